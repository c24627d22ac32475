package lab

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/lab/kubelet"
)

const (
	deploymentName = "jiameng-api"
	namespace      = "lab"
)

// deployment builds the Deployment a user would apply for s. App durations
// go into the container's env already scaled: the kubelet scales spec
// fields, but it cannot know that an env value is a duration.
func deployment(s Scenario, scale kubelet.TimeScale) *appsv1.Deployment {
	labels := map[string]string{"app": deploymentName}
	replicas := s.Replicas
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deploymentName, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas:        &replicas,
			Selector:        &metav1.LabelSelector{MatchLabels: labels},
			MinReadySeconds: s.MinReadySeconds,
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr(s.MaxSurge), MaxUnavailable: ptr(s.MaxUnavailable),
				},
			},
			Template: podTemplate(s, scale, 1),
		},
	}
}

// podTemplate is revision rev of the pod template: the version string
// changes with each rollout, as seed 003's sequence number did.
func podTemplate(s Scenario, scale kubelet.TimeScale, rev int) corev1.PodTemplateSpec {
	if s.Template == nil {
		return demoTemplate(s, scale, rev)
	}
	return userTemplate(s, scale, rev)
}

// userTemplate is the user's own template, with what the lab must change to
// run it here: a version env that changes per rollout, graceful's duration
// env values scaled, a preStop whose length is known turned into the native
// sleep action (an exec "sleep 40" on the host would not be scaled), the
// scenario's grace period, and the readiness gate the webhook would inject.
func userTemplate(s Scenario, scale kubelet.TimeScale, rev int) corev1.PodTemplateSpec {
	t := *s.Template.DeepCopy()
	c := &t.Spec.Containers[0]
	setEnv(c, "VERSION", fmt.Sprintf("v%d", rev))
	// How the demo API, standing in for the user's app, shuts down
	// (--app-shutdown); a user's own --app server may ignore it.
	setEnv(c, "SHUTDOWN_MODE", s.App.Shutdown)
	// graceful's durations as the scenario holds them (appFromEnv read
	// them from this env, or took the defaults it states), scaled: an
	// unset one would leave the demo API on its own default in real time.
	for name, d := range map[string]time.Duration{graceful.EnvDrainDelay: s.App.DrainDelay,
		graceful.EnvShutdownTimeout: s.App.ShutdownTimeout, graceful.EnvIdleTimeout: s.App.IdleTimeout} {
		setEnv(c, name, scale.Of(d).String())
	}
	if s.PreStop > 0 {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: int64(s.PreStop / time.Second)},
		}}
	}
	// The grace period is the scenario's (read from this template), so a
	// changed scenario runs as it says.
	grace := int64(s.Grace / time.Second)
	t.Spec.TerminationGracePeriodSeconds = &grace
	if s.ReadinessGate && len(t.Spec.ReadinessGates) == 0 {
		t.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: GateConditionType}}
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels["app"] = deploymentName
	return t
}

func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

func demoTemplate(s Scenario, scale kubelet.TimeScale, rev int) corev1.PodTemplateSpec {
	grace := int64(s.Grace / time.Second)
	c := corev1.Container{
		Name:  "api",
		Image: "jiameng-api:lab",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: AppPort}},
		Env: []corev1.EnvVar{
			{Name: "VERSION", Value: fmt.Sprintf("v%d", rev)},
			{Name: "SHUTDOWN_MODE", Value: s.App.Shutdown},
			{Name: "DRAIN_DELAY", Value: scale.Of(s.App.DrainDelay).String()},
			{Name: "SHUTDOWN_TIMEOUT", Value: scale.Of(s.App.ShutdownTimeout).String()},
			{Name: "IDLE_TIMEOUT", Value: scale.Of(s.App.IdleTimeout).String()},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/readyz", Port: intstr.FromString("http"),
			}},
			PeriodSeconds: 1, FailureThreshold: 1,
		},
	}
	if s.PreStop > 0 {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: int64(s.PreStop / time.Second)},
		}}
	}
	spec := corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		TerminationGracePeriodSeconds: &grace,
	}
	if s.ReadinessGate {
		// What the controller's webhook injects at pod creation.
		spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: GateConditionType}}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": deploymentName}},
		Spec:       spec,
	}
}

func ptr[T any](v T) *T { return &v }
