package check

import "time"

// Options are the facts rollsafe cannot read from manifests.
type Options struct {
	// Propagation (P) is how long after deregistration ALB nodes may still
	// send new requests to the target. AWS publishes no number; see
	// docs/rules/prestop-too-short.md for why the default is 10 s.
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
}

// Defaults, each explained in the rule page that uses it.
const (
	DefaultPropagation        = 10 * time.Second
	DefaultControllerLag      = 5 * time.Second
	DefaultMaxRequestDuration = 30 * time.Second
	// GateRequeue is the controller's default re-check period for readiness
	// gates whose target is not yet healthy.
	GateRequeue = 15 * time.Second
	// SlowStep is the per-pod rollout step above which healthcheck-slow
	// reports: one minute per pod makes a 10-replica rollout ten minutes.
	SlowStep = 60 * time.Second
)

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Propagation:        DefaultPropagation,
		ControllerLag:      DefaultControllerLag,
		MaxRequestDuration: DefaultMaxRequestDuration,
		DefaultNamespace:   "default",
	}
}

// Annotations rollsafe reads from the Deployment/StatefulSet (or its pod
// template) to learn facts about the app.
const (
	AnnotationAppIdleTimeout     = "rollsafe.dev/app-idle-timeout"
	AnnotationMaxRequestDuration = "rollsafe.dev/max-request-duration"
	AnnotationShutdownTime       = "rollsafe.dev/shutdown-time"
)
