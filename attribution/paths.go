package attribution

import (
	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/timeline"
)

// Target types, as ELBv2 names them: the pods are the targets (ip), or the
// nodes, each forwarding through its kube-proxy (instance; every Classic
// ELB). TargetTypeIngress is rollsafe's: the targets are an in-cluster
// ingress controller's pods (ingress-nginx), never rolled, which proxy to
// the app's pod endpoints.
const (
	TargetTypeIP       = "ip"
	TargetTypeInstance = "instance"
	TargetTypeIngress  = "ingress"
)

// TargetTypes lists the target types a caller may give, for flag help and
// errors.
var TargetTypes = []string{TargetTypeIP, TargetTypeInstance, TargetTypeIngress}

// targetType is the run's target type: the caller's (Options.TargetType,
// the lab's scenario mark), else instance when target health was polled and
// no polled target is a pod's IP (the targets are nodes), else ip.
func (an *analysis) targetType() string {
	if tt := an.a.opts.TargetType; tt != "" {
		return tt
	}
	if an.a.targetType != "" {
		return an.a.targetType
	}
	if len(an.r.targets) == 0 || len(an.r.pods) == 0 {
		return TargetTypeIP
	}
	for key := range an.r.targets {
		if an.r.podHeld(ipOf(key)) {
			return TargetTypeIP
		}
	}
	return TargetTypeInstance
}

// proxyLag bounds how long after an endpoint turned terminating a node's
// kube-proxy may still send new connections to it, at the lab's time scale.
func (an *analysis) proxyLag() int64 {
	if an.a.opts.ProxyLag > 0 {
		return int64(an.a.opts.ProxyLag)
	}
	return int64(float64(defaultProxyLag) * an.scale())
}

// defaultProxyLag: kube-proxy applies an endpoint change no sooner than its
// minimum sync period after its previous sync, so a change can wait that
// long, plus the watch and the rules' apply; twice the period bounds it on
// a cluster that is not overloaded.
const defaultProxyLag = 2 * defaults.KubeProxyMinSyncPeriod

// ingressLag bounds how long after a pod turned terminating the ingress may
// still route to it: its sync lag (defaults.NginxSyncLag) plus kube-proxy's
// slack for the watch, at the lab's time scale.
func (an *analysis) ingressLag() int64 {
	return int64(float64(defaults.NginxSyncLag+defaults.KubeProxyMinSyncPeriod) * an.scale())
}

// podsInferred says, when the pod states are there to infer the pod from,
// why the pod is inferred (why, and the evidence that would name it); else
// it marks the failure as having no cause.
func (an *analysis) podsInferred(v *verdict, why, would string) bool {
	if !an.r.sources["kube"] {
		v.doubt("no pod states", "pod states from the Kubernetes API (probe --kube)")
		v.noCause = true
		return false
	}
	v.doubt(why, would)
	return true
}

// viaIngress attributes a failure behind an ingress hop: the hop chose the
// pod, and only its own access log ($upstream_addr) says which, so every
// cause rests on the pods that could have carried it and is at best likely.
// A pod that got SIGKILL while the request was out was killed under it; a
// pod that exited during the request or within the hop's sync lag before
// it is one the hop still routed to.
func (an *analysis) viaIngress(v *verdict, t int64) timeline.Cause {
	if !an.podsInferred(v, "the ingress chose the pod: which one is in the ingress controller's access log ($upstream_addr), not in this evidence, so the pod is inferred from the pod records",
		"the ingress controller's access log") {
		return timeline.CauseUnknown
	}
	f := v.f
	slack, lag := int64(an.a.opts.ExitSlack), an.ingressLag()
	var killed, gone *podHist
	for _, p := range an.r.pods {
		switch {
		case an.killedDuring(f, p):
			killed = latestExit(killed, p)
		case p.exited != 0 && p.exited <= f.end+slack && p.exited >= t-lag:
			gone = latestExit(gone, p)
		}
	}
	switch {
	case killed != nil:
		return an.blame(v, killed, timeline.CauseKilledByGrace)
	case gone != nil:
		return an.blame(v, gone, timeline.CauseIngressStaleEndpoint)
	}
	v.noCause = true
	return timeline.CauseUnknown
}

// scale is the lab's time scale (1 for a real cluster).
func (an *analysis) scale() float64 {
	if s := an.a.timeScale; s > 0 && s <= 1 {
		return s
	}
	return 1
}

// passThrough reports whether the failure is the TCP connection's own (a
// reset, an EOF, a refused or timed-out connect) rather than an HTTP answer:
// a load balancer that answers HTTP (ALB, CLB) turns a target's failure into
// a 5xx, so a TCP failure is the target's, passed through (an NLB).
func passThrough(f *failReq) bool {
	if f.Status != 0 {
		return false
	}
	switch f.Class {
	case timeline.ClassConnReset, timeline.ClassEOF, timeline.ClassConnRefused, timeline.ClassTimeout:
		return true
	}
	return false
}

// timedOut: the failure is an unanswered wait — a 504, a TCP connection
// that timed out, or one reset only after a connect timeout's wait (what
// gave up was a connect nothing answered: a node's to a gone pod's IP).
func (an *analysis) timedOut(f *failReq) bool {
	if f.Status == 504 || f.Class == timeline.ClassHTTP504 || f.Class == timeline.ClassTimeout {
		return true
	}
	return passThrough(f) && f.end-f.sent >= int64(float64(defaults.ConnectTimeout)*an.scale())
}

// atExit reports whether the request ended as pod p exited: sent no later
// than just after the exit and failed no later than just after it. A
// connection pinned to the pod fails then (in flight, or reused before the
// load balancer saw it close); a new connection the exited pod refuses can
// fail at any time after.
func (an *analysis) atExit(f *failReq, p *podHist) bool {
	slack := int64(an.a.opts.ExitSlack)
	return p.exited != 0 && f.sent <= p.exited+slack && f.end >= p.exited-slack && f.end <= p.exited+slack
}

// goneFor reports whether pod p's exit can explain the failure: it had
// exited by the time the load balancer got the request (a new connection
// then fails), or it exited or was killed as the request ran. A failure
// that hung long after the request was sent is not explained by an exit
// after the send.
func (an *analysis) goneFor(f *failReq, p *podHist, t int64) bool {
	return (p.exited != 0 && p.exited <= t+int64(an.a.opts.ExitSlack)) || an.atExit(f, p) || an.killedDuring(f, p)
}

// killedDuring: pod p got the grace period's SIGKILL while the request was out.
func (an *analysis) killedDuring(f *failReq, p *podHist) bool {
	return p.killed() && p.exited >= f.sent && p.exited <= f.end+int64(an.a.opts.ExitSlack)
}

// viaNode attributes a failure whose load balancer target is a node
// (instance targets; "" when the evidence names no node): the node's
// kube-proxy chose the pod, and no evidence says which, so every cause
// rests on the pods that could have carried it and is at best likely.
func (an *analysis) viaNode(v *verdict, node string, t int64) timeline.Cause {
	if c, ok := an.nodeHealth(v, node, t); ok {
		return c
	}
	if !an.podsInferred(v, "the target is a node: which pod its kube-proxy chose is not in the evidence, so the pod is inferred from the pod records",
		"the app's own request log (which pod served or dropped it)") {
		return timeline.CauseUnknown
	}
	f := v.f
	c := an.nodeCandidates(f, t)
	switch {
	case c.killed != nil:
		return an.blame(v, c.killed, timeline.CauseKilledByGrace)
	case !an.timedOut(f) && c.atExit != nil:
		v.doubt("a new connection refused by the pod just as it exited would fail the same way", "")
		return an.blame(v, c.atExit, timeline.CausePinnedConnectionReset)
	case c.stale != nil:
		return an.blame(v, c.stale, timeline.CauseStaleEndpoint)
	case an.timedOut(f) && !c.gone:
		return timeline.CauseTargetTimeout
	case !an.timedOut(f) && !c.gone:
		v.doubt("no pod exited around the request: the app closing a kept-alive connection fits, but no log shows its reuse", "the app's connection logs")
		return timeline.CauseKeepAliveRace
	}
	v.noCause = true
	return timeline.CauseUnknown
}

// nodeHealth is the fail-open rule on nodes: a load balancer routes to a
// target that is not healthy only when none is. With no node named, every
// polled node must have been unhealthy.
func (an *analysis) nodeHealth(v *verdict, node string, t int64) (timeline.Cause, bool) {
	keys := []string{node}
	if node == "" {
		keys = keys[:0]
		for key := range an.r.targets {
			keys = append(keys, key)
		}
	}
	unsure := false
	for _, key := range keys {
		health, sure, known := an.healthAt(an.r.targets[key], nil, t)
		if !known || health == "healthy" {
			return "", false
		}
		unsure = unsure || !sure
	}
	if len(keys) == 0 {
		return "", false
	}
	if unsure {
		v.doubt("a node's health changed between two polls around the request", "a shorter --poll-interval")
	}
	return timeline.CauseNoHealthyTarget, true
}

// nodeCands are the pods that could explain a failure through a node.
type nodeCands struct {
	killed *podHist // got SIGKILL while the request was out
	atExit *podHist // exited as the request ended
	// stale exited (or was deleted) before the request ended, and turned
	// terminating recently enough that a node may not have synced.
	stale *podHist
	gone  bool // some pod had exited by the request's end
}

func (an *analysis) nodeCandidates(f *failReq, t int64) nodeCands {
	var c nodeCands
	slack, lag := int64(an.a.opts.ExitSlack), an.proxyLag()
	for _, p := range an.r.pods {
		exitedBy := p.exited != 0 && p.exited <= f.end+slack
		c.gone = c.gone || (exitedBy && p.exited >= f.sent-lag)
		switch {
		case an.killedDuring(f, p):
			c.killed = latestExit(c.killed, p)
		case an.atExit(f, p):
			c.atExit = latestExit(c.atExit, p)
		case exitedBy && p.terminating != 0 && p.terminating <= t+slack && t <= p.terminating+lag:
			c.stale = latestExit(c.stale, p)
		}
	}
	return c
}

// latestExit is the one of a and b that exited last (a may be nil), so a
// failure rests on the same pod whatever the order of the pod records.
func latestExit(a, b *podHist) *podHist {
	if a == nil || b.exited > a.exited || (b.exited == a.exited && b.name > a.name) {
		return b
	}
	return a
}

// blame names the pod a cause rests on, with its facts.
func (an *analysis) blame(v *verdict, p *podHist, c timeline.Cause) timeline.Cause {
	v.f.Pod = p.name
	an.podFacts(v, p)
	return c
}

// exitedInFlight is the pass-through rule on an ip target: a TCP failure as
// the pod exited is a connection pinned to it (an NLB keeps a deregistered
// target's connections flowing), not a new connection.
func (an *analysis) exitedInFlight(v *verdict, p *podHist) (timeline.Cause, bool) {
	if !passThrough(v.f) || an.timedOut(v.f) || !an.atExit(v.f, p) {
		return "", false
	}
	v.doubt("a new connection refused by the pod just as it exited would fail the same way", "")
	return timeline.CausePinnedConnectionReset, true
}
