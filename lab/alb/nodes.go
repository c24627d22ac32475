package alb

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// node is one LB node's view of the target group. The proxy reads only
// table (an immutable snapshot behind an atomic pointer) and rr, so routing
// takes no lock; everything else is guarded by LB.mu.
type node struct {
	id    int
	table atomic.Pointer[routeTable]
	rr    atomicCounter

	known  []*target          // targets this node believes registered
	seq    map[*target]uint64 // last applied propagation event per target
	timers map[*time.Timer]struct{}
}

// routeTable is a node's routing snapshot.
type routeTable struct {
	healthy []*target // round-robin set
	all     []*target // fail-open set: every target the node believes registered
}

type nodeKey struct{}

// atomicCounter is a padded counter so nodes' round-robin counters do not
// share a cache line.
type atomicCounter struct {
	n atomic.Uint64
	_ [56]byte
}

func (c *atomicCounter) next() uint64 { return c.n.Add(1) - 1 }

// propagate schedules, for every node, the moment it learns that t was
// registered (add) or deregistered (!add). Nodes with a zero delay learn
// at once; their marks are returned. Call with lb.mu held.
func (lb *LB) propagate(t *target, add bool) (recs []*timeline.Record) {
	// The nodes learn in a random order, evenly spread, the last one after
	// exactly P: P is what users measure by hand, the time until the last
	// node stops routing (aws-load-balancer-controller#2366).
	order := lb.rng.Perm(len(lb.nodes))
	for i, n := range lb.nodes {
		d := lb.prop * time.Duration(order[i]+1) / time.Duration(len(lb.nodes))
		ev := t.gen
		if d == 0 {
			if rec := lb.learn(n, t, ev, add); rec != nil {
				recs = append(recs, rec)
			}
			continue
		}
		if n.timers == nil {
			n.timers = map[*time.Timer]struct{}{}
		}
		var tm *time.Timer
		tm = time.AfterFunc(d, func() {
			lb.mu.Lock()
			delete(n.timers, tm)
			var rec *timeline.Record
			if !lb.closed {
				rec = lb.learn(n, t, ev, add)
			}
			lb.mu.Unlock()
			if rec != nil {
				lb.emit([]*timeline.Record{rec})
			}
		})
		n.timers[tm] = struct{}{}
	}
	return recs
}

// learn applies one propagation event to node n, unless a newer event for
// the same target already reached it (events may arrive out of order, since
// each has its own delay). Call with lb.mu held.
func (lb *LB) learn(n *node, t *target, ev uint64, add bool) *timeline.Record {
	if ev < n.seq[t] || lb.targets[t.key] != t {
		return nil
	}
	n.seq[t] = ev
	if add {
		if !slices.Contains(n.known, t) {
			n.known = append(n.known, t)
			slices.SortFunc(n.known, func(a, b *target) int { return strings.Compare(a.key, b.key) })
		}
	} else {
		n.forget(t)
	}
	n.rebuild()
	reason := "alb.NodeLearnedRegistration"
	if !add {
		reason = "alb.NodeLearnedDeregistration"
	}
	return &timeline.Record{
		Kind: timeline.KindEvent, Time: time.Now(), Source: "lab", Object: t.key, Reason: reason,
		Attrs: map[string]string{"node": strconv.Itoa(n.id), "target_group": lb.cfg.Name},
	}
}

func (n *node) forget(t *target) {
	n.known = slices.DeleteFunc(n.known, func(x *target) bool { return x == t })
}

// rebuild publishes a fresh routing snapshot. Call with lb.mu held.
func (n *node) rebuild() {
	rt := &routeTable{all: slices.Clone(n.known)}
	for _, t := range n.known {
		if t.health.Load() == hHealthy {
			rt.healthy = append(rt.healthy, t)
		}
	}
	n.table.Store(rt)
}

// rebuildAll refreshes every node after a health change. Call with lb.mu held.
func (lb *LB) rebuildAll() {
	for _, n := range lb.nodes {
		n.rebuild()
	}
}

// pick chooses the target for one request on node n: round-robin over the
// healthy targets, or, when none is healthy, over every target the node
// believes registered (fail-open). nil means none is registered.
func (n *node) pick() (t *target, failOpen bool) {
	rt := n.table.Load()
	if len(rt.healthy) > 0 {
		return rt.healthy[n.rr.next()%uint64(len(rt.healthy))], false
	}
	if len(rt.all) > 0 {
		return rt.all[n.rr.next()%uint64(len(rt.all))], true
	}
	return nil, false
}

func sortHealth(hs []TargetHealth) {
	slices.SortFunc(hs, func(a, b TargetHealth) int {
		if c := strings.Compare(a.Target.IP, b.Target.IP); c != 0 {
			return c
		}
		return a.Target.Port - b.Target.Port
	})
}
