package attribution

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// answersStopWithApp: an app whose exit comes this soon after its last
// answer stopped answering because it exited, not because the load
// balancer stopped routing: the delay measured from answers is then a
// lower bound.
const answersStopWithApp = time.Second

// propagation measures, for every target that went draining, how long the
// load balancer kept sending it new requests: the last request routed to it
// after the deregistration (access log first, else the last answer carrying
// its pod's name), minus the deregistration time the polls allow.
func (an *analysis) propagation() *Propagation {
	var ts []TargetPropagation
	for key, d := range an.drains {
		tp, ok := an.measure(key, d)
		if ok {
			ts = append(ts, tp)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	slices.SortFunc(ts, func(a, b TargetPropagation) int {
		return cmp.Or(a.DeregisteredBy.Compare(b.DeregisteredBy), cmp.Compare(a.Target, b.Target))
	})
	p := &Propagation{Targets: ts}
	var est []float64
	for _, t := range ts {
		est = append(est, t.Seconds)
		p.MaxSeconds = max(p.MaxSeconds, t.Seconds)
		p.MaxUpperSeconds = max(p.MaxUpperSeconds, t.MaxSeconds)
	}
	p.P95Seconds = percentile(est, 95)
	p.ControllerLagSeconds = an.controllerLag()
	p.Implied = an.implied(p.MaxUpperSeconds, p.ControllerLagSeconds)
	return p
}

func (an *analysis) measure(key string, d *drainInfo) (TargetPropagation, bool) {
	tp := TargetPropagation{Target: key,
		DeregisteredAfter: time.Unix(0, d.polls.lo).UTC(), DeregisteredBy: time.Unix(0, d.polls.hi).UTC()}
	if d.pod != nil {
		tp.Pod = d.pod.name
	}
	until := d.until
	if until == 0 {
		until = math.MaxInt64
	}
	last, via := int64(0), ""
	if an.hasLog {
		if t, ok := lastBefore(an.r.log.byTarget[key], an.skew, until); ok {
			last, via = t, "accesslog"
		}
	}
	if via == "" && d.pod != nil {
		if t, ok := lastBefore(an.r.answers[d.pod.name], 0, until); ok {
			last, via = t, "replica"
		}
	}
	if via == "" || last <= d.polls.lo {
		return tp, false // nothing routed to it after it left service
	}
	tp.LastRouted, tp.Via = time.Unix(0, last).UTC(), via
	tp.MinSeconds = math.Max(0, float64(last-d.polls.hi)/1e9)
	tp.MaxSeconds = float64(last-d.polls.lo) / 1e9
	tp.Seconds = math.Max(0, float64(last-d.est)/1e9)
	switch {
	case via == "replica" && d.pod.exited != 0 && d.pod.exited-last < int64(answersStopWithApp):
		tp.LowerBound = true
		tp.Note = "its app stopped answering when it exited, and only its answers were seen (no access log)"
	case via == "accesslog" && d.pod != nil && d.pod.deleted != 0 && d.pod.deleted < last:
		// Requests to the gone IP hung until the connect timeout, holding
		// their client connections: later requests may never have
		// reached the load balancer nodes that still routed to it.
		tp.LowerBound = true
		tp.Note = "its pod was deleted while the load balancer still routed to it: requests hung on the connect timeout and held the client connections later requests would have used"
	}
	return tp, true
}

// controllerLag is the largest lag from Terminating to draining the
// evidence allows: the intersection's upper bound when the windows agree,
// else the largest single window's.
func (an *analysis) controllerLag() float64 {
	if an.lagOK {
		return float64(an.lag.hi) / 1e9
	}
	var m int64
	for _, d := range an.drains {
		if d.pod != nil && d.pod.terminating != 0 && d.pod.terminating <= d.polls.hi {
			m = max(m, d.polls.hi-d.pod.terminating)
		}
	}
	return float64(m) / 1e9
}

// lastBefore is the latest of xs (less skew) that is before until: a
// target IP used again by a later pod must not stretch this one's figure.
func lastBefore(xs []int64, skew, until int64) (int64, bool) {
	best, ok := int64(0), false
	for _, x := range xs {
		if x -= skew; x < until && (!ok || x > best) {
			best, ok = x, true
		}
	}
	return best, ok
}
