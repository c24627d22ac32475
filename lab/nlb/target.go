package nlb

import (
	"slices"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
)

// ReasonDeregistrationPropagated marks (Kind event, Source lab) the moment a
// deregistered target stops getting new connections: the end of
// DeregistrationPropagation, what users measure by hand on AWS.
const ReasonDeregistrationPropagated = "nlb.DeregistrationPropagated"

// target is the LB's record of one registered target; guarded by LB.mu.
type target struct {
	addr alb.Target
	key  string // "ip:port"

	// health is what health checks concluded (initial, healthy,
	// unhealthy); it is frozen while draining, and a draining target still
	// routed is chosen by it, as before its deregistration.
	health   alb.State
	draining bool
	// routed says new connections may reach t: true from registration until
	// a deregistration's propagation ends.
	routed bool
	reason string
	runs   alb.HealthRuns
	gen    uint64        // bumped at every (re)registration and deregistration
	stopHC chan struct{} // closed to stop this registration's health checker
	timers []*time.Timer // a deregistration's propagation and delay
}

// state is the API state.
func (t *target) state() alb.State {
	if t.draining {
		return alb.StateDraining
	}
	return t.health
}

func (t *target) stopTimers() {
	for _, tm := range t.timers {
		tm.Stop() // their funcs also check gen, so a late fire is harmless
	}
	t.timers = nil
}

func insertSorted(ts []*target, t *target) []*target {
	i, _ := slices.BinarySearchFunc(ts, t, func(a, b *target) int { return strings.Compare(a.key, b.key) })
	return slices.Insert(ts, i, t)
}

func removeTarget(ts []*target, t *target) []*target {
	return slices.DeleteFunc(ts, func(x *target) bool { return x == t })
}

// pick chooses the target of one new connection: one of the routed healthy
// targets at random, or, when none is healthy, one of every routed target
// (fail-open: "if there are only unhealthy registered targets, the load
// balancer routes requests to all registered targets", NLB user guide,
// troubleshooting). nil means no target is routed. Call with lb.mu held.
//
// AWS hashes the protocol, the addresses and ports and the TCP sequence
// number (NLB user guide, overview). The initial sequence number is
// unpredictable per connection (RFC 9293 section 3.4.1, RFC 6528), so two
// connections from one client land independently of each other: a seeded
// random choice per connection is that, repeatably.
func (lb *LB) pick() (t *target, failOpen bool) {
	var healthy, routed []*target
	for _, t := range lb.order {
		if !t.routed {
			continue
		}
		routed = append(routed, t)
		if t.health == alb.StateHealthy {
			healthy = append(healthy, t)
		}
	}
	switch {
	case len(healthy) > 0:
		return healthy[lb.rng.IntN(len(healthy))], false
	case len(routed) > 0:
		return routed[lb.rng.IntN(len(routed))], true
	}
	return nil, false
}

// failsOpen reports whether no routed target is healthy. Call with lb.mu held.
func (lb *LB) failsOpen() bool {
	for _, t := range lb.order {
		if t.routed && t.health == alb.StateHealthy {
			return false
		}
	}
	return true
}

// flowsOf returns the open connections to t (every one when t is nil).
// Call with lb.mu held.
func (lb *LB) flowsOf(t *target) []*flow {
	var out []*flow
	for f := range lb.flows {
		if t == nil || f.t == t {
			out = append(out, f)
		}
	}
	return out
}
