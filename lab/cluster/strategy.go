package cluster

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/internal/rollout"
)

// fenceposts resolves maxSurge and maxUnavailable to pod counts for
// replicas, as the deployment controller's ResolveFenceposts does; the
// arithmetic is rollout.Fenceposts, the same `check` judges manifests with.
func fenceposts(s *appsv1.RollingUpdateDeployment, replicas int) (surge, unavailable int, err error) {
	var ms, mu *intstr.IntOrString
	if s != nil {
		ms, mu = s.MaxSurge, s.MaxUnavailable
	}
	return rollout.Fenceposts(ms, mu, replicas)
}
