package check

import "time"

// Options are the facts rollsafe cannot read from manifests.
type Options struct {
	// Propagation (P) is how long after deregistration ALB nodes may still
	// send new requests to the target. AWS publishes no number; the default
	// is the best public measurement (docs/rules/prestop-too-short.md).
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
	// DefaultPropagation: traffic to an ALB ip target stopped about 17 s
	// after it turned draining (aws-load-balancer-controller#2366), the one
	// public measurement. `rollsafe report` measures P on the user's own
	// load balancer and prints the --propagation to use instead.
	DefaultPropagation        = 17 * time.Second
	DefaultControllerLag      = 5 * time.Second
	DefaultMaxRequestDuration = 30 * time.Second
	// Margin is added to the boundaries the recommendation sizes from P:
	// the preStop (controller lag + P) and the deregistration delay (P +
	// the longest request). A preStop exactly as long as lag + P races the
	// last load balancer node: the lab loses requests at that boundary
	// (lab TestMinimalTimingsProven; docs/guide.md has the figures). 2 s is
	// the margin `rollsafe report` adds to its implied preStop, so the
	// preStop report implies is the one check --recommend gives.
	Margin = 2 * time.Second
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
