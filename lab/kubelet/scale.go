package kubelet

import "time"

// TimeScale shrinks every duration the kubelet derives from a pod spec or
// from its own constants: 0.05 turns a 30 s grace period into 1.5 s. Zero (or
// less) means real time. It is applied in exactly one place, Seconds (and
// Of for the constants), so nothing is shrunk twice.
type TimeScale float64

// Of scales a real duration.
func (s TimeScale) Of(d time.Duration) time.Duration {
	if s <= 0 {
		return d
	}
	return time.Duration(float64(d) * float64(s))
}

// Seconds scales a whole number of seconds from a spec field.
func (s TimeScale) Seconds(n int64) time.Duration { return s.Of(time.Duration(n) * time.Second) }

// Kubelet constants, in real time; scaled where used.
const (
	// minStopWindow is the kubelet's minimumGracePeriodInSeconds: after a
	// preStop hook overran the grace period the container still gets SIGTERM
	// and this long before SIGKILL.
	minStopWindow = 2 * time.Second
	// Crash-loop back-off: 10 s, doubling, capped at 5 minutes
	// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts).
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
	// A container that ran this long without a crash resets the back-off.
	backoffReset = 10 * time.Minute
)

// Spec defaults (core/v1 field docs).
const (
	defaultGraceSeconds     = 30
	defaultPeriodSeconds    = 10
	defaultTimeoutSeconds   = 1
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

func orDefault[T ~int32 | ~int64](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}

func nonZero(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}
