package check

import (
	"math"
	"time"
)

// Recommendation is the minimal safe setting set for one workload and the
// time a rollout then costs, so users trade safety and speed knowingly.
type Recommendation struct {
	Workload string `json:"workload"`
	// MinPreStop is the necessary preStop sleep: controller lag + P.
	MinPreStop time.Duration `json:"minPreStop"`
	// PreStop also keeps the seeds' ordering preStop ≥ deregistration delay,
	// so the pod outlives its draining target even if the app does not drain.
	PreStop time.Duration `json:"preStop"`
	// DeregistrationDelay lets the longest request finish.
	DeregistrationDelay time.Duration `json:"deregistrationDelay"`
	// TerminationGracePeriod covers PreStop, the drain after SIGTERM and the
	// app's shutdown, with one second to spare.
	TerminationGracePeriod time.Duration `json:"terminationGracePeriod"`
	// LBIdleTimeout is the load balancer's idle timeout as configured, and
	// MinAppIdleTimeout the app keep-alive that must exceed it.
	LBIdleTimeout     time.Duration `json:"lbIdleTimeout"`
	MinAppIdleTimeout time.Duration `json:"minAppIdleTimeout"`
	// ReadyStep: new pod created → Ready (probe, registration, health
	// checks, gate re-check).
	ReadyStep time.Duration `json:"readyStep"`
	// PodReplacement: worst case for one replacement, ReadyStep then the old
	// pod's full grace period.
	PodReplacement time.Duration `json:"podReplacement"`
	// Rollout: worst case for the whole rollout at the current strategy.
	Rollout time.Duration `json:"rollout"`
}

// Recommend computes the Recommendation for w.
func Recommend(w *Workload, o Options) Recommendation {
	r := Recommendation{Workload: w.Ref}
	r.MinPreStop = ceilSec(StopWindow(o))
	r.DeregistrationDelay = ceilSec(max(w.MaxRequestDuration, time.Second))
	r.PreStop = max(r.MinPreStop, r.DeregistrationDelay)
	r.TerminationGracePeriod = minGrace(w, o, r.PreStop)
	r.LBIdleTimeout = defaultIdle
	for _, rt := range w.Routes {
		if rt.L7 && rt.IdleTimeout > 0 {
			r.LBIdleTimeout = rt.IdleTimeout
		}
	}
	r.MinAppIdleTimeout = r.LBIdleTimeout + time.Second
	rec := *w
	rec.ManualGate = rec.ManualGate || rec.hasIPRoute() // the recommendation includes the gate
	r.ReadyStep = ceilSec(rec.ReadyStep(o))
	r.PodReplacement = r.ReadyStep + r.TerminationGracePeriod
	batch := w.MaxSurge + w.MaxUnavailable
	if batch < 1 {
		batch = 1
	}
	steps := (w.Replicas + batch - 1) / batch
	r.Rollout = time.Duration(steps)*r.ReadyStep + r.TerminationGracePeriod
	return r
}

// minGrace is the smallest grace period that is not exceeded by a preStop
// of preStop followed by the drain and shutdown: one second more than both.
func minGrace(w *Workload, o Options, preStop time.Duration) time.Duration {
	return ceilSec(preStop+w.DrainAfterTERM(o, preStop)) + time.Second
}

func (w *Workload) hasIPRoute() bool {
	for _, r := range w.Routes {
		if r.TargetType == "ip" {
			return true
		}
	}
	return false
}

func ceilSec(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}
