package lab

import (
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// FromManifests builds a scenario from the user's own Deployment and what
// routes to it (Service, Ingress or TargetGroupBinding, Namespace): replicas,
// strategy, probes, preStop, grace period, readiness-gate injection and the
// ALB's attributes and health check. path is a file or directory, or "-"
// for stdin; a kustomization directory is rendered first (manifest.Load),
// so an overlay replays as kubectl would apply it.
func FromManifests(path string, stdin io.Reader) (Scenario, error) {
	objs, err := manifest.Load([]string{path}, stdin)
	if err != nil {
		return Scenario{}, err
	}
	ws, err := workload.Resolve(objs, workload.DefaultOptions())
	if err != nil {
		return Scenario{}, err
	}
	var served []*workload.Workload
	for _, w := range ws {
		if w.Kind == "Deployment" && w.Served() {
			served = append(served, w)
		}
	}
	switch {
	case len(served) == 0:
		return Scenario{}, fmt.Errorf("%s: no Deployment behind a Service found", path)
	case len(served) > 1:
		var refs []string
		for _, w := range served {
			refs = append(refs, w.Ref)
		}
		return Scenario{}, fmt.Errorf("%s: %d Deployments found (%s): give one at a time", path, len(served), strings.Join(refs, ", "))
	}
	return fromWorkload(served[0], path), nil
}

func fromWorkload(w *workload.Workload, source string) Scenario {
	s := base(w.Name, "replayed from "+w.Ref)
	s.Source = source
	s.Replicas = int32(w.Replicas)
	s.MaxSurge, s.MaxUnavailable = intstr.FromInt(w.MaxSurge), intstr.FromInt(w.MaxUnavailable)
	s.MinReadySeconds = int32(w.MinReadySeconds)
	s.ReadinessGate = w.GateActive()
	s.Grace = w.TerminationGracePeriod
	if len(w.Containers) > 0 && w.Containers[0].PreStop.Known {
		s.PreStop = w.Containers[0].PreStop.Duration
	}
	if len(w.Routes) > 0 {
		rt := w.Routes[0]
		s.DeregistrationDelay = rt.DeregistrationDelay
		if rt.IdleTimeout > 0 {
			s.LBIdleTimeout = rt.IdleTimeout
		}
		s.HealthCheck = alb.HealthCheck{
			Path: rt.HealthCheck.Path, Interval: rt.HealthCheck.Interval, Timeout: rt.HealthCheck.Timeout,
			HealthyThreshold: rt.HealthCheck.HealthyThreshold, UnhealthyThreshold: rt.HealthCheck.UnhealthyThreshold,
			Matcher: rt.HealthCheck.SuccessCodes,
		}
		if s.HealthCheck.Path == "" {
			s.HealthCheck.Path = defaults.HealthCheckPath
		}
		if s.HealthCheck.Matcher == "" {
			s.HealthCheck.Matcher = defaults.HealthCheckMatcher
		}
	}
	s.App = appFromEnv(w.Template, w.AppIdleTimeout)
	tmpl := w.Template.DeepCopy()
	s.Template = tmpl
	return s
}

// appFromEnv reads graceful's settings from the first container's env, so
// the demo API (when it stands in for the user's app) behaves as configured.
func appFromEnv(t *corev1.PodTemplateSpec, idle time.Duration) App {
	app := App{Shutdown: "graceful", ShutdownTimeout: graceful.DefaultShutdownTimeout, IdleTimeout: graceful.DefaultIdleTimeout}
	if idle > 0 {
		app.IdleTimeout = idle
	}
	if t == nil || len(t.Spec.Containers) == 0 {
		return app
	}
	for _, e := range t.Spec.Containers[0].Env {
		d, err := graceful.ParseDuration(e.Value)
		if err != nil {
			continue
		}
		switch e.Name {
		case graceful.EnvDrainDelay:
			app.DrainDelay = d
		case graceful.EnvShutdownTimeout:
			app.ShutdownTimeout = d
		case graceful.EnvIdleTimeout:
			app.IdleTimeout = d
		}
	}
	return app
}
