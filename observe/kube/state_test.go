package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// These cover the state mappings on hand-built objects, so they run even
// where the control plane is not built; kube_test.go shows the same
// mappings on objects the real controllers wrote.

func TestDeploymentState(t *testing.T) {
	three := int32(3)
	dep := func(gen, observed int64, s appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &three},
			Status:     func() appsv1.DeploymentStatus { s.ObservedGeneration = observed; return s }(),
		}
	}
	paused := dep(1, 1, appsv1.DeploymentStatus{})
	paused.Spec.Paused = true
	for name, c := range map[string]struct {
		d    *appsv1.Deployment
		want string
	}{
		"spec not observed":    {dep(2, 1, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), RolloutProgressing},
		"updating":             {dep(2, 2, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3}), RolloutProgressing},
		"old pods terminating": {dep(2, 2, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3}), RolloutProgressing},
		"new pods unavailable": {dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}), RolloutProgressing},
		"complete":             {dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), RolloutComplete},
		"deadline exceeded": {dep(2, 2, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded"}}}), RolloutFailed},
		"paused": {paused, RolloutPaused},
	} {
		if got, msg := DeploymentState(c.d); got != c.want {
			t.Errorf("%s: state %s (%s), want %s", name, got, msg, c.want)
		}
	}
}

func TestPodState(t *testing.T) {
	now := metav1.Now()
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for name, c := range map[string]struct {
		p    corev1.Pod
		want string
	}{
		"new":                      {corev1.Pod{}, StatePending},
		"running, gate false":      {corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, StateRunning},
		"ready":                    {corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready}}, StateReady},
		"ready but terminating":    {corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready}}, StateTerminating},
		"failed while terminating": {corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}, StateExited},
	} {
		if got := PodState(&c.p); got != c.want {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}

func TestEndpointState(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		c    discoveryv1.EndpointConditions
		want string
	}{
		{discoveryv1.EndpointConditions{}, EndpointReady}, // nil ready means ready, per the API
		{discoveryv1.EndpointConditions{Ready: &no, Serving: &no}, EndpointNotReady},
		{discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}, EndpointServingTerminating},
		{discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &yes}, EndpointTerminating},
	} {
		if got := endpointStateOf(c.c); got != c.want {
			t.Errorf("%+v: %s, want %s", c.c, got, c.want)
		}
	}
}

func TestDiff(t *testing.T) {
	prev := snapshot{state: "Running", attrs: map[string]string{"a": "1", "b": "2", "gone": "x"}}
	got := diff(prev, "Ready", map[string]string{"a": "1", "b": "3", "new": "y"})
	if want := "state Running→Ready; b 2→3; new=y; gone removed"; got != want {
		t.Errorf("diff = %q, want %q", got, want)
	}
}
