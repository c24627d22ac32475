package attribution

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/timeline"
)

// Result attributes every failure of every run. Call it once, after all
// input is in.
func (a *Analyzer) Result() *Result {
	skew := median(a.pending.skew)
	a.assignLogs(skew)
	var ans []*analysis
	for _, name := range a.order {
		r := a.runs[name]
		if r.requests == 0 && len(r.pods) == 0 && len(r.targets) == 0 {
			continue // marks only
		}
		r.sortEvidence()
		an := &analysis{a: a, r: r, skew: skew, drains: map[string]*drainInfo{}}
		an.bracketDrains()
		ans = append(ans, an)
	}
	// One controller drives every run of one input (the lab's scenarios, a
	// cluster's rollouts): its lag is bounded by all their deregistrations
	// together. Runs that disagree with the pool fall back to their own.
	pool, ok := lagBounds(ans...)
	res := &Result{}
	for _, an := range ans {
		lag, lagOK := pool, ok
		if !ok {
			lag, lagOK = lagBounds(an)
		}
		an.narrowDrains(lag, lagOK)
		res.Runs = append(res.Runs, an.attribute())
	}
	return res
}

// assignLogs gives each run its joined access-log entries, and each entry
// that joined no request to the run that knows its target and whose
// requests span its time (or to the only run).
func (a *Analyzer) assignLogs(skew int64) {
	p := a.pending
	for _, name := range a.order {
		r := a.runs[name]
		if rl, ok := p.byRun[r.idx]; ok {
			r.log = rl
		}
	}
	const slack = int64(time.Second)
	for target, tsp := range p.unjoined {
		ts := *tsp
		var cands []*runData
		for _, name := range a.order {
			if r := a.runs[name]; len(a.order) == 1 || r.knows(target) {
				cands = append(cands, r)
			}
		}
		for _, t := range ts {
			var r *runData
			for _, c := range cands {
				if len(cands) == 1 || (t-skew >= c.first-slack && t-skew <= c.last+slack) {
					r = c
					break
				}
			}
			if r == nil {
				continue
			}
			if r.log == nil {
				r.log = &runLog{byTarget: map[string][]int64{}, fails: map[int32]logEntry{}}
			}
			r.log.entries++
			r.log.byTarget[target] = append(r.log.byTarget[target], t)
		}
	}
}

// window is a span of unix ns; lo == hi is an instant.
type window struct{ lo, hi int64 }

func (w window) mid() int64 { return w.lo + (w.hi-w.lo)/2 }

// drainInfo is what the evidence says of one target's deregistration.
type drainInfo struct {
	polls  window // from the polls alone
	narrow window // narrowed by the controller-lag estimate
	est    int64  // best estimate
	before string // state before draining
	until  int64  // first poll that saw it leave draining (0: none)
	pod    *podHist
}

// analysis is the state of attributing one run.
type analysis struct {
	a      *Analyzer
	r      *runData
	skew   int64
	drains map[string]*drainInfo
	lag    window // controller lag bounds, when estimable
	lagOK  bool
	pmax   int64 // measured P (upper bound), for fail-open reasoning
	hasLog bool
	// instance: the targets are nodes (targetType), so the rules for a
	// pod behind kube-proxy apply.
	instance bool
	// ingress: the targets are an ingress controller's pods (targetType),
	// so the rules for a pod behind the ingress hop apply.
	ingress bool
}

func (an *analysis) attribute() *Run {
	r := an.r
	an.hasLog = r.log != nil && r.log.entries > 0
	an.instance = an.targetType() == TargetTypeInstance
	an.ingress = an.targetType() == TargetTypeIngress
	out := &Run{Scenario: r.name, Rollouts: r.rolloutCount(), Requests: r.requests, Failed: uint64(len(r.fails))}
	out.Join = an.join()
	out.Propagation = an.propagation()
	if out.Propagation != nil {
		an.pmax = int64(out.Propagation.MaxUpperSeconds * 1e9)
	}
	for i := range r.fails {
		f := &r.fails[i]
		an.explain(int32(i), f)
		out.Failures = append(out.Failures, f.Failure)
	}
	out.Causes = causeCounts(out.Failures)
	out.Agreement = agreement(r, out.Failures)
	out.Sources, out.Missing = an.sources()
	out.Headline = headline(out)
	return out
}

func (an *analysis) join() Join {
	j := Join{ClockSkewMS: float64(an.skew) / 1e6}
	rl := an.r.log
	if rl == nil {
		if an.a.pending.entries > 0 {
			j.Note = "no access-log entry joined this run's requests by trace id, nor named its targets"
		}
		return j
	}
	j.AccessLogEntries, j.FailedJoined = rl.entries, uint64(len(rl.fails))
	j.Sampled, j.SampledJoined = an.r.sampled, rl.joined-j.FailedJoined
	switch {
	case rl.joined == 0 && an.r.sampled+uint64(len(an.r.fails)) > 0:
		j.Note = fmt.Sprintf("the access log and the %d request records do not join: no trace id matches (different runs?); causes are inferred without it", an.r.requests)
		an.hasLog = false
	case j.FailedJoined < uint64(len(an.r.fails)):
		j.Note = fmt.Sprintf("%d of %d failed requests have no access-log line (not yet delivered to S3, another load balancer, or the request never reached it)",
			uint64(len(an.r.fails))-j.FailedJoined, len(an.r.fails))
	}
	return j
}

// bracketDrains bounds every target's deregistration from the polls alone.
func (an *analysis) bracketDrains() {
	for key, th := range an.r.targets {
		lo, hi, until, before, ok := th.drain()
		if !ok {
			continue
		}
		d := &drainInfo{polls: window{lo, hi}, narrow: window{lo, hi}, est: lo + (hi-lo)/2, before: before, until: until}
		d.pod = an.r.podAt(ipOf(key), lo)
		an.drains[key] = d
	}
}

// lagBounds intersects, over every drained target whose pod was seen
// Terminating, the controller lags its poll window allows ([lo-Tt, hi-Tt]):
// the controller deregisters a fairly constant time after the pod turns
// Terminating, so many windows bound that lag far better than any one poll
// interval does. ok is false with fewer than two windows or when they do
// not overlap (the lag varies).
func lagBounds(ans ...*analysis) (window, bool) {
	lag := window{lo: math.MinInt64, hi: math.MaxInt64}
	n := 0
	for _, an := range ans {
		for _, d := range an.drains {
			if d.pod == nil || d.pod.terminating == 0 || d.pod.terminating > d.polls.hi {
				continue
			}
			lag.lo = max(lag.lo, d.polls.lo-d.pod.terminating, 0)
			lag.hi = min(lag.hi, d.polls.hi-d.pod.terminating)
			n++
		}
	}
	return lag, n >= 2 && lag.lo <= lag.hi
}

// narrowDrains narrows each deregistration window with the lag bounds and
// takes the middle as the estimate.
func (an *analysis) narrowDrains(lag window, ok bool) {
	an.lag, an.lagOK = lag, ok
	if !ok {
		return
	}
	for _, d := range an.drains {
		if d.pod == nil || d.pod.terminating == 0 {
			continue
		}
		tt := d.pod.terminating
		d.narrow = window{lo: max(d.polls.lo, tt+lag.lo), hi: min(d.polls.hi, tt+lag.hi)}
		if d.narrow.lo > d.narrow.hi {
			d.narrow = d.polls
		}
		d.est = d.narrow.mid()
	}
}

// lbTime is when the load balancer got a failed request, on the probe's
// clock: the access log's request_creation_time less the skew, or the send time.
func (an *analysis) lbTime(f *failReq, e *logEntry) int64 {
	if e != nil && e.created != 0 {
		return e.created - an.skew
	}
	return f.sent
}

func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func causeCounts(fs []Failure) []CauseCount {
	m := map[timeline.Cause]*CauseCount{}
	for _, f := range fs {
		c := m[f.Cause]
		if c == nil {
			c = &CauseCount{Cause: f.Cause, Explanation: Explain(f.Cause)}
			m[f.Cause] = c
		}
		c.Count++
		switch f.Confidence {
		case Certain:
			c.Certain++
		case Likely:
			c.Likely++
		}
	}
	out := make([]CauseCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(x, y CauseCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Cause, y.Cause))
	})
	return out
}

func agreement(r *runData, fs []Failure) *Agreement {
	if len(r.truth) == 0 {
		return nil
	}
	ag := &Agreement{}
	for i := range fs {
		f := &fs[i]
		t, ok := r.truth[traceOf(f.TraceID)]
		if !ok {
			continue
		}
		f.Truth = t
		ag.Compared++
		if t == f.Cause {
			ag.Agree++
		} else if f.Confidence == Certain {
			ag.WronglyCertain++
		}
	}
	if ag.Compared > 0 {
		ag.Ratio = float64(ag.Agree) / float64(ag.Compared)
	}
	return ag
}

func (an *analysis) sources() (have, missing []string) {
	r := an.r
	for _, s := range []string{"probe", "kube", "elbv2"} {
		if r.sources[s] {
			have = append(have, s)
		}
	}
	if an.hasLog {
		have = append(have, "accesslog")
	}
	if len(r.fails) == 0 {
		return have, nil
	}
	if !r.sources["kube"] {
		missing = append(missing, "pod states from the Kubernetes API (probe --kube) would show whether each target's pod had exited or been deleted")
	}
	if !r.sources["elbv2"] {
		missing = append(missing, "target health (probe --target-group-arn) would show which targets were draining, and when")
	}
	if !an.hasLog {
		missing = append(missing, "the ALB access log (report FILE s3://bucket/prefix/) would name the target of every failed request")
	}
	return have, missing
}

// headline is the run's story in one sentence.
func headline(run *Run) string {
	s := ""
	if run.Rollouts > 0 {
		s = plural(run.Rollouts, "rollout") + ", "
	}
	if run.Failed == 0 {
		return s + fmt.Sprintf("0 of %d requests failed", run.Requests)
	}
	s += fmt.Sprintf("%d of %d failed", run.Failed, run.Requests)
	if len(run.Causes) == 0 {
		return s
	}
	top := run.Causes[0]
	s += fmt.Sprintf("; %d %s", top.Count, shortOf(top.Cause))
	if p := run.Propagation; p != nil && len(p.Targets) > 0 &&
		(top.Cause == timeline.CauseDrainingTargetExited || top.Cause == timeline.CauseDrainingTargetGone) {
		s += fmt.Sprintf(", up to %.1f s after deregistration", p.MaxSeconds)
	}
	return s
}

func plural(n int, w string) string {
	if n == 1 {
		return "1 " + w
	}
	return fmt.Sprintf("%d %ss", n, w)
}

// percentile is the nearest-rank p-th percentile of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// implied turns measured figures into the preStop they need, by check's
// own arithmetic (defaults.StopWindow: controller lag + P).
func (an *analysis) implied(p, lag float64) Implied {
	scale := an.a.timeScale
	if scale <= 0 || scale > 1 {
		scale = 1
	}
	// Whole seconds, as manifests write them; the epsilon keeps 0.1/0.1
	// from rounding up to 2.
	spec := func(s float64) time.Duration { return time.Duration(math.Ceil(s/scale-1e-9)) * time.Second }
	prop, ctrlLag := spec(p), spec(lag)
	pre := defaults.StopWindow(ctrlLag, prop) + an.a.opts.Margin
	im := Implied{PropagationSeconds: prop.Seconds(), ControllerLagSeconds: ctrlLag.Seconds(),
		MarginSeconds: an.a.opts.Margin.Seconds(), MinPreStopSeconds: pre.Seconds(),
		Command: fmt.Sprintf("rollsafe check --propagation %s --controller-lag %s %s", prop, ctrlLag, an.a.opts.CheckPath)}
	if scale != 1 {
		im.TimeScale = scale
	}
	return im
}
