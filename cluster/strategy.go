package cluster

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var defaultQuarter = intstr.FromString("25%")

// fenceposts resolves maxSurge and maxUnavailable to pod counts for
// replicas, as the deployment controller's ResolveFenceposts does.
func fenceposts(s *appsv1.RollingUpdateDeployment, replicas int) (surge, unavailable int, err error) {
	ms, mu := &defaultQuarter, &defaultQuarter
	if s != nil {
		if s.MaxSurge != nil {
			ms = s.MaxSurge
		}
		if s.MaxUnavailable != nil {
			mu = s.MaxUnavailable
		}
	}
	if surge, err = intstr.GetScaledValueFromIntOrPercent(ms, replicas, true); err != nil {
		return 0, 0, fmt.Errorf("maxSurge %s: %w", ms.String(), err)
	}
	if unavailable, err = intstr.GetScaledValueFromIntOrPercent(mu, replicas, false); err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable %s: %w", mu.String(), err)
	}
	if surge < 0 || unavailable < 0 {
		return 0, 0, fmt.Errorf("maxSurge %s / maxUnavailable %s: must not be negative", ms.String(), mu.String())
	}
	if surge == 0 && unavailable == 0 {
		// Validation forbids both 0; if rounding made them 0, Kubernetes
		// allows one unavailable pod so the rollout can move at all.
		unavailable = 1
	}
	return surge, unavailable, nil
}
