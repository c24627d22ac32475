package kube

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rollsafe/rollsafe/timeline"
)

// Rollout states of a Deployment, decided as `kubectl rollout status` decides.
const (
	RolloutProgressing = "Progressing" // new replicas not all updated and available, or old ones not gone
	RolloutComplete    = "Complete"    // every replica updated and available, no old replica left
	RolloutFailed      = "Failed"      // progress deadline exceeded
	RolloutPaused      = "Paused"      // spec.paused
)

// ReplicaSet states.
const (
	ReplicaSetScaling    = "Scaling"    // replicas or availability differ from spec
	ReplicaSetAvailable  = "Available"  // every desired replica exists and is available
	ReplicaSetScaledDown = "ScaledDown" // zero desired, zero left: an old revision
)

// revisionAnnotation is where the deployment controller numbers revisions.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// DeploymentState follows kubectl's rollout status: the controller must
// have observed the latest spec, then updated, total and available replica
// counts must all reach the desired count.
func DeploymentState(d *appsv1.Deployment) (state, message string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case d.Spec.Paused:
		return RolloutPaused, "rollout paused"
	case d.Generation > s.ObservedGeneration:
		return RolloutProgressing, "waiting for the deployment spec update to be observed"
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return RolloutFailed, fmt.Sprintf("progress deadline exceeded: %s", c.Message)
		}
	}
	switch {
	case s.UpdatedReplicas < want:
		return RolloutProgressing, fmt.Sprintf("%d of %d updated replicas", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return RolloutProgressing, fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return RolloutProgressing, fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return RolloutComplete, "successfully rolled out"
}

func (w *watcher) deployment(obj any, deleted bool) (observation, bool) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || !w.selector.Matches(labels.Set(d.Spec.Template.Labels)) {
		return observation{}, false
	}
	state, msg := DeploymentState(d)
	s := d.Status
	a := map[string]string{
		"resource": "deployment", "namespace": d.Namespace, "message": msg,
		"generation":          strconv.FormatInt(d.Generation, 10),
		"observed_generation": strconv.FormatInt(s.ObservedGeneration, 10),
		"replicas":            int32Attr(d.Spec.Replicas, 1),
		"status_replicas":     strconv.Itoa(int(s.Replicas)),
		"updated":             strconv.Itoa(int(s.UpdatedReplicas)),
		"ready":               strconv.Itoa(int(s.ReadyReplicas)),
		"available":           strconv.Itoa(int(s.AvailableReplicas)),
		"unavailable":         strconv.Itoa(int(s.UnavailableReplicas)),
	}
	if rev := d.Annotations[revisionAnnotation]; rev != "" {
		a["revision"] = rev
	}
	if deleted {
		state = StateDeleted
	}
	return observation{kind: timeline.KindRollout, key: "deployment/" + d.Namespace + "/" + d.Name, object: d.Name, state: state, attrs: a}, true
}

func (w *watcher) replicaSet(obj any, deleted bool) (observation, bool) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return observation{}, false
	}
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	s := rs.Status
	state := ReplicaSetScaling
	switch {
	case want == 0 && s.Replicas == 0:
		state = ReplicaSetScaledDown
	case s.Replicas == want && s.AvailableReplicas == want:
		state = ReplicaSetAvailable
	}
	if deleted {
		state = StateDeleted
	}
	a := map[string]string{
		"resource": "replicaset", "namespace": rs.Namespace,
		"replicas":        strconv.Itoa(int(want)),
		"status_replicas": strconv.Itoa(int(s.Replicas)),
		"ready":           strconv.Itoa(int(s.ReadyReplicas)),
		"available":       strconv.Itoa(int(s.AvailableReplicas)),
	}
	if rev := rs.Annotations[revisionAnnotation]; rev != "" {
		a["revision"] = rev
	}
	if h := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
		a["pod_template_hash"] = h
	}
	for _, o := range rs.OwnerReferences {
		if o.Kind == "Deployment" {
			a["deployment"] = o.Name
		}
	}
	return observation{kind: timeline.KindRollout, key: "replicaset/" + rs.Namespace + "/" + rs.Name, object: rs.Name, state: state, attrs: a}, true
}

func int32Attr(p *int32, def int32) string {
	if p == nil {
		return strconv.Itoa(int(def))
	}
	return strconv.Itoa(int(*p))
}
