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
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
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
	s := fromWorkload(served[0], path)
	if err := s.Validate(); err != nil {
		return Scenario{}, fmt.Errorf("%s: %s: %w", path, served[0].Ref, err)
	}
	return s, nil
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
		s = withRoute(s, &w.Routes[0])
	}
	s.App = appFromEnv(w.Template, w.AppIdleTimeout)
	if w.DrainDelay > 0 {
		// The annotation or env check reads (workload.Workload.DrainDelay).
		s.App.DrainDelay = w.DrainDelay
	}
	tmpl := w.Template.DeepCopy()
	s.Template = tmpl
	return s
}

// withRoute replays the load balancer in front of the workload: its
// topology (the kind of load balancer and its target type), then its
// settings over the topology's defaults. A setting the route leaves at
// zero keeps the default, so a route the manifests say little about still
// runs with what AWS would use.
func withRoute(s Scenario, rt *workload.Route) Scenario {
	topo, _ := LookupTopology(routeTopology(rt))
	if rt.Service != nil {
		if svc, ok := rt.Service.Obj.(*corev1.Service); ok && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			s.Policy = kubeproxy.PolicyLocal
		}
	}
	s = s.On(topo)                                 // the topology's defaults first …
	s.DeregistrationDelay = rt.DeregistrationDelay // … then what the manifests say (0: CLB draining off)
	if rt.IdleTimeout > 0 {
		s.LBIdleTimeout = rt.IdleTimeout
	}
	def := s.HealthCheck
	def.Path = "" // the demo API's /readyz is no default for the user's app
	s.HealthCheck = routeHealthCheck(def, rt.HealthCheck)
	s.HealthCheckProtocol = rt.HealthCheck.Protocol
	if rt.Nginx != nil {
		s.Nginx = hopFromRoute(*s.Nginx, rt.Nginx)
	}
	return s
}

// routeTopology names the topology of a route (workload.Route.LB and
// TargetType).
func routeTopology(rt *workload.Route) string {
	instance := rt.TargetType == "instance"
	switch {
	case rt.LB == workload.LBNginx:
		return TopologyNginxIngress
	case rt.LB == "CLB" && !rt.L7:
		return "clb-tcp"
	case rt.LB == "CLB":
		return "clb"
	case rt.LB == "NLB" && instance:
		return "nlb-instance"
	case rt.LB == "NLB":
		return "nlb-ip"
	case instance:
		return "alb-instance"
	}
	return "alb-ip"
}

// routeHealthCheck lays the route's health check over def, field by field
// (a zero field keeps def's). A TCP check is replayed as GET of the path,
// which passes whenever the app answers, as the connect does.
func routeHealthCheck(def alb.HealthCheck, rh workload.HealthCheck) alb.HealthCheck {
	hc := def
	if rh.Path != "" {
		hc.Path = rh.Path
	}
	if rh.Interval > 0 {
		hc.Interval = rh.Interval
	}
	if rh.Timeout > 0 {
		hc.Timeout = rh.Timeout
	}
	if rh.HealthyThreshold > 0 {
		hc.HealthyThreshold = rh.HealthyThreshold
	}
	if rh.UnhealthyThreshold > 0 {
		hc.UnhealthyThreshold = rh.UnhealthyThreshold
	}
	if rh.SuccessCodes != "" {
		hc.Matcher = rh.SuccessCodes
	}
	if hc.Path == "" {
		hc.Path = defaults.HealthCheckPath
	}
	if hc.Matcher == "" {
		hc.Matcher = defaults.HealthCheckMatcher
	}
	return hc
}

// appFromEnv reads graceful's settings from the first container's env, so
// the demo API (when it stands in for the user's app) behaves as configured.
func appFromEnv(t *corev1.PodTemplateSpec, idle time.Duration) App {
	// Unset, each is graceful's own default: what the app (or the demo API
	// standing in for it) does without the env.
	app := App{Shutdown: "graceful", DrainDelay: graceful.DefaultDrainDelay, ShutdownTimeout: graceful.DefaultShutdownTimeout, IdleTimeout: graceful.DefaultIdleTimeout}
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
		switch e.Name { // a longer DRAIN_DELAY: workload.Workload.DrainDelay
		case graceful.EnvDrainDelay:
			app.DrainDelay = d // "0s" too, which the workload cannot tell from unset
		case graceful.EnvShutdownTimeout:
			app.ShutdownTimeout = d
		case graceful.EnvIdleTimeout:
			app.IdleTimeout = d
		}
	}
	return app
}
