package attribution

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rollsafe/rollsafe/timeline"
)

// verdict is a cause being built: every fact that lies inside an
// uncertainty window lowers the confidence to Likely and says why.
type verdict struct {
	f       *failReq
	unsure  []string
	settle  []string
	ev      []Evidence
	noCause bool // the evidence does not say: confidence Unknown
}

func (v *verdict) doubt(why, settle string) {
	v.unsure = append(v.unsure, why)
	if settle != "" {
		v.settle = append(v.settle, settle)
	}
}

func (v *verdict) fact(ns int64, source, format string, a ...any) {
	v.ev = append(v.ev, Evidence{Time: unixUTC(ns), Source: source, What: fmt.Sprintf(format, a...)})
}

func (v *verdict) done(c timeline.Cause) {
	f := &v.f.Failure
	f.Cause, f.Evidence = c, v.ev
	switch {
	case v.noCause || c == timeline.CauseUnknown:
		f.Confidence = Unknown
		if len(v.unsure) == 0 {
			v.unsure = append(v.unsure, "no rule matches the evidence")
		}
		f.Reason = strings.Join(v.unsure, "; ")
	case len(v.unsure) > 0:
		f.Confidence = Likely
		f.Reason = strings.Join(v.unsure, "; ")
	default:
		f.Confidence = Certain
		f.Reason = "every fact used lies outside its uncertainty window"
	}
	f.Settle = strings.Join(dedupe(v.settle), "; ")
}

// explain attributes failure i of the run.
func (an *analysis) explain(i int32, f *failReq) {
	v := &verdict{f: f}
	var e *logEntry
	if an.hasLog {
		if le, ok := an.r.log.fails[i]; ok {
			e = &le
		}
	}
	v.fact(f.sent, "probe", "sent; failed %s%s after %s", f.Class, statusText(f.Status), secs(f.end-f.sent))
	t := an.lbTime(f, e)
	target := ""
	if e != nil {
		what := logText(e)
		if an.skew != 0 {
			what += fmt.Sprintf(" (request_creation_time %s on the ALB's clock, %+.0f ms from the prober's)", fmtTime(e.created), float64(an.skew)/1e6)
		}
		v.ev = append(v.ev, Evidence{Time: unixUTC(e.created - an.skew), Source: "accesslog", At: e.at, What: what})
		switch {
		case e.target == "" && e.elb == 503:
			v.done(timeline.CauseNoRegisteredTarget)
			return
		case e.targetStatus != 0:
			v.noCause = true
			v.doubt(fmt.Sprintf("the target itself answered %d: the app's own logs say why", e.targetStatus), "")
			v.done(timeline.CauseUnknown)
			return
		}
		target = e.target
	} else {
		if an.hasLog {
			v.doubt("this request has no access-log line", "its access-log line (logs land in S3 about 5 minutes later)")
		}
		if !an.instance && !an.ingress {
			target = an.inferTarget(v, t)
		}
	}
	if an.ingress {
		v.done(an.viaIngress(v, t))
		return
	}
	if an.instance {
		v.f.Target = target
		v.done(an.viaNode(v, target, t))
		return
	}
	if target == "" {
		v.done(an.noTarget(v, t))
		return
	}
	v.f.Target = target
	v.done(an.onTarget(v, target, t))
}

// onTarget applies the rules to a request the load balancer sent to target.
func (an *analysis) onTarget(v *verdict, target string, t int64) timeline.Cause {
	f := v.f
	th := an.r.targets[target]
	d := an.drains[target]
	pod := an.r.podAt(ipOf(target), t)
	if pod != nil {
		f.Pod = pod.name
		an.podFacts(v, pod)
	}
	if th != nil {
		an.targetFacts(v, th, d, t)
	}

	// The ALB routes to a target that is not healthy only when it fails open.
	if health, sure, known := an.healthAt(th, d, t); known && health != "healthy" {
		if !sure {
			v.doubt("the target's health changed between two polls around the request", "a shorter --poll-interval")
		}
		return timeline.CauseNoHealthyTarget
	}
	if pod == nil {
		if !an.r.sources["kube"] {
			v.doubt("no pod states", "pod states from the Kubernetes API (probe --kube)")
		} else {
			v.doubt("no pod held this target's IP in the pod records", "")
		}
		if draining, _ := an.drainingAt(d, t); draining {
			return timeline.CauseDrainingTargetExited
		}
		v.noCause = true
		return timeline.CauseUnknown
	}
	slack := int64(an.a.opts.ExitSlack)
	if an.killedDuring(f, pod) {
		return timeline.CauseKilledByGrace
	}
	if c, ok := an.exitedInFlight(v, pod); ok {
		return c
	}
	draining, sure := an.drainingAt(d, t)
	if th == nil {
		v.doubt("no target states", "target health (probe --target-group-arn)")
	} else if !sure {
		v.doubt("the deregistration happened between two polls around the request; decided by the controller-lag estimate", "a shorter --poll-interval")
	}
	if cut, cutSure := an.cutAt(th, d, f); cut && pod.exited == 0 {
		if !cutSure {
			v.doubt("the deregistration delay ended between two polls while the request ran", "")
		}
		return timeline.CauseDeregistrationCut
	}
	gone := pod.exited != 0 && pod.exited <= f.end+slack
	if gone && pod.exited > t {
		v.doubt("the pod's exit was recorded just after the request", "")
	}
	deleted := pod.deleted != 0 && pod.deleted <= t+slack
	switch {
	case (an.timedOut(f) || passThrough(f)) && deleted && draining:
		// A new connection to an IP that has left the network goes
		// unanswered: an ALB gives up with a 504, an NLB's client waits
		// (the NLB resets it at its idle timeout).
		return timeline.CauseDrainingTargetGone
	case an.timedOut(f) && !gone:
		return timeline.CauseTargetTimeout
	case gone && draining:
		return timeline.CauseDrainingTargetExited
	case gone && pod.terminating != 0 && pod.terminating <= t+slack:
		return timeline.CauseExitedBeforeDeregistration
	case gone:
		return timeline.CauseTargetNotListening // exited on its own, not in a termination
	case (pod.serving == 0 || pod.serving > t) && (pod.ready == 0 || pod.ready > t):
		v.doubt("no container of the pod was ready yet: its app may not have been listening", "")
		return timeline.CauseTargetNotListening
	}
	v.doubt("the app was running and the connection closed before an answer: the keep-alive race fits, but no log shows the connection's reuse", "the app's connection logs")
	return timeline.CauseKeepAliveRace
}

// healthAt is the health a load balancer node could route target by at t:
// its polled state, or for a draining target the state it had before
// draining (a node that has not yet learned of the deregistration still
// routes by it). known is false without target records.
func (an *analysis) healthAt(th *targetHist, d *drainInfo, t int64) (health string, sure, known bool) {
	if th == nil {
		return "", false, false
	}
	state, next, amb, ok := th.stateAt(t)
	if !ok {
		return "", false, false
	}
	if state == "draining" && d != nil {
		state = d.before
	}
	if amb && next == "draining" && d != nil {
		next = d.before
	}
	if state == "" {
		return "", false, false
	}
	sure = !amb || (next == state) || (isHealthy(next) == isHealthy(state))
	return state, sure, true
}

func isHealthy(s string) bool { return s == "healthy" }

// drainingAt says whether the target was draining at t and whether the
// polls settle it; inside the poll window the controller-lag estimate decides.
func (an *analysis) drainingAt(d *drainInfo, t int64) (draining, sure bool) {
	if d == nil {
		return false, true
	}
	switch {
	case t >= d.polls.hi:
		return true, true
	case t < d.polls.lo:
		return false, true
	}
	return t >= d.est, false
}

// cutAt says whether the request was in flight when the target's draining
// ended (its deregistration delay ran out).
func (an *analysis) cutAt(th *targetHist, d *drainInfo, f *failReq) (cut, sure bool) {
	if th == nil || d == nil || d.until == 0 {
		return false, false
	}
	var end tchange
	for _, c := range th.changes {
		if c.at == d.until {
			end = c
		}
	}
	if end.state != "unused" {
		return false, false
	}
	lo := max(end.prev, d.polls.hi)
	if f.sent >= end.at || f.end < lo {
		return false, false
	}
	return true, f.sent < lo && f.end >= end.at
}

// inferTarget guesses the target of a failure that has no access-log line:
// the one target whose pod had exited while it was still registered. It
// returns "" when none or several fit.
func (an *analysis) inferTarget(v *verdict, t int64) string {
	var fits []string
	for key, th := range an.r.targets {
		state, _, _, ok := th.stateAt(t)
		if !ok || state == "unused" {
			continue
		}
		if p := an.r.podAt(ipOf(key), t); p != nil && an.goneFor(v.f, p, t) {
			fits = append(fits, key)
		}
	}
	switch {
	case len(fits) == 1:
		v.doubt("no access log: the target is inferred as the only registered one whose pod had exited", "the ALB access log (report FILE s3://bucket/prefix/)")
		return fits[0]
	case len(fits) > 1:
		if key, n := an.mostCause(v.f, fits, t); key != "" {
			v.doubt(fmt.Sprintf("no access log: %d registered targets' pods had exited, and the evidence gives %d of them this cause (a load balancer spreads new connections evenly over its targets)", len(fits), n),
				"the load balancer's access log, or the app's own request log")
			return key
		}
	}
	return ""
}

// mostCause is the target, of several that fit, whose cause the rules give
// more of them than any other cause, and how many: which one carried the
// request is unknown, but the cause most of them share is the likelier.
// "" when no cause leads.
func (an *analysis) mostCause(f *failReq, targets []string, t int64) (string, int) {
	slices.Sort(targets)
	count := map[timeline.Cause]int{}
	first := map[timeline.Cause]string{}
	for _, key := range targets {
		c := *f
		c.Evidence = nil
		got := an.onTarget(&verdict{f: &c}, key, t)
		count[got]++
		if first[got] == "" {
			first[got] = key
		}
	}
	best, n, tie := timeline.CauseUnknown, 0, false
	for c, k := range count {
		switch {
		case k > n:
			best, n, tie = c, k, false
		case k == n:
			tie = true
		}
	}
	if tie || best == timeline.CauseUnknown {
		return "", 0
	}
	return first[best], n
}

// noTarget attributes a failure whose target is unknown.
func (an *analysis) noTarget(v *verdict, t int64) timeline.Cause {
	if v.f.Status == 503 && len(an.r.targets) > 0 && an.inService(t) == 0 {
		v.doubt("no access log: the 503 matches no target in service in the polls", "the ALB access log")
		return timeline.CauseNoRegisteredTarget
	}
	v.noCause = true
	if !an.hasLog {
		v.doubt("no access log names the target, and no single target fits", "the ALB access log (report FILE s3://bucket/prefix/)")
	} else {
		v.doubt("the target could not be told", "")
	}
	return timeline.CauseUnknown
}

func (an *analysis) inService(t int64) int {
	n := 0
	for _, th := range an.r.targets {
		if s, _, _, ok := th.stateAt(t); ok && s != "unused" && s != "draining" {
			n++
		}
	}
	return n
}

func (an *analysis) podFacts(v *verdict, p *podHist) {
	if p.terminating != 0 {
		v.fact(p.terminating, "kube", "pod %s (%s) Terminating", p.name, p.ip)
	}
	if p.exited != 0 {
		how := strings.TrimPrefix(p.exitedHow, "terminated:")
		if how == "" {
			how = "exited"
		} else {
			how = "container terminated (" + how + ")"
		}
		v.fact(p.exited, "kube", "pod %s: %s", p.name, how)
	}
	if p.deleted != 0 {
		v.fact(p.deleted, "kube", "pod %s deleted: its IP %s left the network", p.name, p.ip)
	}
}

func (an *analysis) targetFacts(v *verdict, th *targetHist, d *drainInfo, t int64) {
	if d != nil {
		v.fact(d.polls.hi, "elbv2", "target %s draining (was %s): deregistered after %s, by %s (estimated %s)",
			th.key, d.before, fmtTime(d.polls.lo), fmtTime(d.polls.hi), fmtTime(d.est))
		return
	}
	if s, _, _, ok := th.stateAt(t); ok {
		v.fact(t, "elbv2", "target %s %s at the time", th.key, s)
	}
}

func logText(e *logEntry) string {
	ts := "-"
	if e.targetStatus != 0 {
		ts = fmt.Sprint(e.targetStatus)
	}
	s := fmt.Sprintf("ALB answered %d; target %s, target status %s", e.elb, orDash(e.target), ts)
	if !e.answered && e.target != "" {
		s += ", processing times -1 (the target never answered)"
	}
	if e.errorReason != "" {
		s += ", error_reason " + e.errorReason
	}
	return s
}

func statusText(s int) string {
	if s == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d)", s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
