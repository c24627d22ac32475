package check

import (
	"encoding/json"
	"math"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/workload"
)

// Recommendation is the minimal safe setting set for one workload and the
// time a rollout then costs, so users trade safety and speed knowingly.
type Recommendation struct {
	Workload string `json:"workload"`
	// MinPreStop is the necessary preStop sleep: controller lag + P, the
	// boundary prestop-too-short enforces.
	MinPreStop time.Duration `json:"minPreStop"`
	// PreStop is MinPreStop + defaults.Margin, and also keeps the seeds' ordering
	// preStop ≥ deregistration delay, so the pod outlives its draining
	// target even if the app does not drain.
	PreStop time.Duration `json:"preStop"`
	// DeregistrationDelay lets the longest request finish when it arrived
	// at the end of the propagation: P + MaxRequestDuration + defaults.Margin.
	DeregistrationDelay time.Duration `json:"deregistrationDelay"`
	// TerminationGracePeriod covers PreStop, the drain after SIGTERM and the
	// app's shutdown, with one second to spare.
	TerminationGracePeriod time.Duration `json:"terminationGracePeriod"`
	// DrainDelay is how long the app must keep serving with "Connection:
	// close" after SIGTERM when kube-proxy is the hop (kube-proxy-keepalive);
	// 0 when no route has instance targets. TerminationGracePeriod covers it.
	DrainDelay time.Duration `json:"drainDelay"`
	// LBIdleTimeout is the load balancer's idle timeout as configured, and
	// MinAppIdleTimeout the app keep-alive that must exceed it; both 0 when
	// no route's load balancer pools connections to the pods (an NLB
	// passes the clients' own through).
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
	// Settings say where DeregistrationDelay is written for each route:
	// target group attributes for an ALB or NLB, connection draining
	// annotations for a Classic ELB, which has no target group.
	Settings []Setting `json:"settings,omitempty"`
	// Inputs are the numbers the settings are derived from, each with
	// where it came from, so a default that drives a number is never hidden.
	Inputs []Input `json:"inputs"`
}

// Setting is one recommended value in the place it is written.
type Setting struct {
	// Object is the object carrying it, as Kind/namespace/name.
	Object string `json:"object"`
	// Key is the annotation; empty when no manifest holds the setting (a
	// hand-made TargetGroupBinding's target group, an in-tree NLB's).
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

// Input is one number a recommendation is derived from.
type Input struct {
	Name  string        `json:"name"`
	Value time.Duration `json:"-"`
	// Source is "default" (then Flag, if any, changes it), "flag" or "annotation".
	Source string `json:"source"`
	Flag   string `json:"flag"`
	// Note says where a default comes from.
	Note string `json:"note,omitempty"`
}

// MarshalJSON writes the value in seconds.
func (in Input) MarshalJSON() ([]byte, error) {
	type plain Input
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"seconds"`
	}{plain(in), in.Value.Seconds()})
}

// MarshalJSON writes every duration in seconds, as manifests write them.
func (r Recommendation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Workload                      string    `json:"workload"`
		MinPreStopSeconds             float64   `json:"minPreStopSeconds"`
		PreStopSeconds                float64   `json:"preStopSeconds"`
		DeregistrationDelaySeconds    float64   `json:"deregistrationDelaySeconds"`
		TerminationGracePeriodSeconds float64   `json:"terminationGracePeriodSeconds"`
		DrainDelaySeconds             float64   `json:"drainDelaySeconds,omitempty"`
		LBIdleTimeoutSeconds          float64   `json:"lbIdleTimeoutSeconds"`
		MinAppIdleTimeoutSeconds      float64   `json:"minAppIdleTimeoutSeconds"`
		ReadyStepSeconds              float64   `json:"readyStepSeconds"`
		PodReplacementSeconds         float64   `json:"podReplacementSeconds"`
		RolloutSeconds                float64   `json:"rolloutSeconds"`
		Settings                      []Setting `json:"settings,omitempty"`
		Inputs                        []Input   `json:"inputs"`
	}{r.Workload, r.MinPreStop.Seconds(), r.PreStop.Seconds(), r.DeregistrationDelay.Seconds(),
		r.TerminationGracePeriod.Seconds(), r.DrainDelay.Seconds(), r.LBIdleTimeout.Seconds(), r.MinAppIdleTimeout.Seconds(),
		r.ReadyStep.Seconds(), r.PodReplacement.Seconds(), r.Rollout.Seconds(), r.Settings, r.Inputs})
}

// inputs names the numbers behind w's recommendation and their sources.
// A value equal to the documented default is reported as the default.
func inputs(w *workload.Workload, o workload.Options) []Input {
	src := func(v, def time.Duration) string {
		if v == def {
			return "default"
		}
		return "flag"
	}
	p := Input{Name: "propagation P", Value: o.Propagation, Source: src(o.Propagation, defaults.Propagation), Flag: "--propagation"}
	if p.Source == "default" {
		p.Note = "the one public measurement, ALB ip target, aws-load-balancer-controller#2366; `rollsafe report` measures yours"
		if nlb := o.ForWorkload(w).Propagation; nlb != o.Propagation {
			p.Value = nlb
			p.Note = "NLB ip targets: users measure about 2 minutes of new connections after deregistration, aws-load-balancer-controller#2366, #3270, aws/containers-roadmap#470; `rollsafe report` measures yours"
		}
	}
	lag := Input{Name: "controller lag", Value: o.ControllerLag, Source: src(o.ControllerLag, defaults.ControllerLag), Flag: "--controller-lag"}
	if instanceRoutes(w) {
		lag.Note = "instance targets: also stands in for the endpoint update kube-proxy waits for, which has no public figure"
	}
	req := Input{Name: "longest request", Value: w.MaxRequestDuration, Source: src(w.MaxRequestDuration, defaults.MaxRequestDuration),
		Flag: "--max-request-duration"}
	if w.MaxRequestAnnotated {
		req.Source, req.Flag = "annotation", workload.AnnotationMaxRequestDuration
	} else if req.Source == "default" {
		req.Note = "Kubernetes' default grace period; set " + workload.AnnotationMaxRequestDuration + " to your app's"
	}
	in := []Input{p, lag, req}
	for _, t := range workloadWindow(judgedBy(o, w), w).terms {
		if t.in != nil {
			in = append(in, *t.in)
		}
	}
	if nginxOnly(w) {
		in = []Input{{Name: "ingress-nginx sync lag", Value: maxSyncLag(w), Source: "default",
			Note: "no cloud LB targets these pods; --sync-rate-limit's sync interval + the Lua balancer's BACKENDS_SYNC_INTERVAL, controller watch latency not included"}, req}
	}
	if w.ShutdownTime > 0 {
		in = append(in, Input{Name: "shutdown time", Value: w.ShutdownTime, Source: "flag", Flag: "--shutdown-time"})
	}
	return in
}

// Recommend computes the Recommendation for w, judged by the options
// o.ForWorkload(w) gives.
func Recommend(w *workload.Workload, o workload.Options) Recommendation {
	r := Recommendation{Workload: w.Ref, Inputs: inputs(w, o)}
	o = judgedBy(o, w)
	r.MinPreStop = ceilSec(o.StopWindow())
	r.DeregistrationDelay = ceilSec(o.Propagation+w.MaxRequestDuration) + defaults.Margin
	r.PreStop = r.MinPreStop + defaults.Margin
	if !noPodTargets(w) { // the pod outlives its draining target (deregistration-delay-vs-prestop)
		r.PreStop = max(r.PreStop, r.DeregistrationDelay)
	}
	if nginxOnly(w) { // no target group: nothing drains
		r.DeregistrationDelay = 0
	}
	drained := *w
	if d := fixedDrain(w); d > 0 {
		drained.DrainDelay = d
	}
	if pinnedWindowOf(w) > 0 {
		r.DrainDelay = drained.DrainDelay
	}
	r.TerminationGracePeriod = minGrace(&drained, o, r.PreStop)
	for _, rt := range w.Routes {
		if rt.L7 {
			r.LBIdleTimeout = max(r.LBIdleTimeout, rt.IdleTimeout)
		}
	}
	// ingress-nginx's pooled connections to the pods idle out like an LB's.
	r.LBIdleTimeout = max(r.LBIdleTimeout, nginxKeepaliveTimeout(w))
	if r.LBIdleTimeout > 0 {
		r.MinAppIdleTimeout = r.LBIdleTimeout + time.Second
	}
	r.Settings = settings(w, r.DeregistrationDelay, o.DefaultNamespace)
	rec := *w
	rec.ManualGate = rec.ManualGate || rec.HasIPRoute() // the recommendation includes the gate
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

// noPodTargets says whether no load balancer has w's pods as targets:
// every route goes through kube-proxy (instance targets) or ingress-nginx,
// so a rollout deregisters nothing and no draining target has to be outlived.
func noPodTargets(w *workload.Workload) bool {
	for _, r := range w.Routes {
		if r.TargetType != "instance" && r.LB != workload.LBNginx {
			return false
		}
	}
	return len(w.Routes) > 0
}

// minGrace is the smallest grace period that is not exceeded by a preStop
// of preStop followed by the drain and shutdown: one second more than both.
func minGrace(w *workload.Workload, o workload.Options, preStop time.Duration) time.Duration {
	return ceilSec(preStop+w.DrainAfterTERM(o, preStop)) + time.Second
}

func ceilSec(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// settings writes delay d where each route of w reads it.
func settings(w *workload.Workload, d time.Duration, ns string) []Setting {
	var out []Setting
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.LB == workload.LBNginx {
			continue // nginx routes to endpoints: no target group, no delay
		}
		obj, _ := r.Locate(r.DelayAt)
		ref := obj.Ref(ns)
		switch {
		case r.LB == "CLB":
			out = append(out, Setting{ref, defaults.CLBDrainingEnabledAnnotation, "true"},
				Setting{ref, defaults.CLBDrainingTimeoutAnnotation, n(d)})
		case r.DelayKey == "":
			out = append(out, Setting{Object: ref, Value: defaults.AttrDeregistrationDelay + "=" + n(d) + " on the target group"})
		default:
			v := setAttr(workload.AnnotationsOf(obj)[r.DelayKey], defaults.AttrDeregistrationDelay, n(d))
			if r.LB == "NLB" && r.TargetType == "ip" {
				v = setAttr(v, defaults.AttrConnectionTermination, "true")
			}
			out = append(out, Setting{ref, r.DelayKey, v})
		}
	}
	return out
}
