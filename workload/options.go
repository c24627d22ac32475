package workload

import (
	"time"

	"github.com/rollsafe/rollsafe/defaults"
)

// Options are the facts rollsafe cannot read from manifests.
type Options struct {
	// Propagation (P) is how long after deregistration load balancer nodes
	// may still send new requests to the target (default
	// defaults.Propagation, measured on an ALB; ForWorkload raises it for
	// NLB ip targets).
	Propagation time.Duration
	// ControllerLag is how long the AWS Load Balancer Controller takes from
	// the pod turning Terminating to its DeregisterTargets call.
	ControllerLag time.Duration
	// MaxRequestDuration is the longest request the app serves; a
	// workload's rollsafe.dev/max-request-duration annotation overrides it.
	MaxRequestDuration time.Duration
	// AppIdleTimeout is the app's keep-alive (idle) timeout; 0 means
	// unknown. The rollsafe.dev/app-idle-timeout annotation overrides it.
	AppIdleTimeout time.Duration
	// ShutdownTime is what the app needs after SIGTERM beyond finishing
	// in-flight requests (closing pools, flushing); the
	// rollsafe.dev/shutdown-time annotation overrides it.
	ShutdownTime time.Duration
	// DefaultNamespace is the namespace of objects that name none.
	DefaultNamespace string
	// Window, when set, is the stop window as a workload's routes make it
	// (check's judgedBy: ingress-nginx's sync lag, the kube-proxy path of
	// instance targets), which is not ControllerLag + Propagation; 0 means
	// it is.
	Window time.Duration
}

// DefaultOptions returns check's defaults (package defaults has their sources).
func DefaultOptions() Options {
	return Options{
		Propagation:        defaults.Propagation,
		ControllerLag:      defaults.ControllerLag,
		MaxRequestDuration: defaults.MaxRequestDuration,
		DefaultNamespace:   "default",
	}
}

// ForWorkload is o as w is judged by: with NLB ip targets, P is at least
// defaults.NLBPropagation (minutes, not ALB seconds) unless --propagation
// changed it from the default.
func (o Options) ForWorkload(w *Workload) Options {
	if o.Propagation != defaults.Propagation {
		return o
	}
	for _, r := range w.Routes {
		if r.LB == "NLB" && r.TargetType == "ip" {
			o.Propagation = max(o.Propagation, defaults.NLBPropagation)
		}
	}
	return o
}

// StopWindow is how long after a pod turns Terminating new requests may
// still reach it: Window when set, else defaults.StopWindow of these
// options.
func (o Options) StopWindow() time.Duration {
	if o.Window > 0 {
		return o.Window
	}
	return defaults.StopWindow(o.ControllerLag, o.Propagation)
}

// Annotations rollsafe reads from the Deployment/StatefulSet (or its pod
// template) to learn facts about the app. Their values are written as
// graceful reads its settings: seconds ("75") or a Go duration ("75s").
const (
	AnnotationAppIdleTimeout     = "rollsafe.dev/app-idle-timeout"
	AnnotationMaxRequestDuration = "rollsafe.dev/max-request-duration"
	AnnotationShutdownTime       = "rollsafe.dev/shutdown-time"
	// AnnotationDrainDelay: how long after SIGTERM the app keeps serving
	// while answering "Connection: close" (Workload.DrainDelay).
	AnnotationDrainDelay = "rollsafe.dev/drain-delay"
)
