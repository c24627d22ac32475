package nginx

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Syncer stands in for ingress-nginx's controller between an EndpointSlice
// change and the workers routing by it, at the lab's time scale: the
// controller syncs through a token bucket (one sync per Interval, burst 1:
// a change after a quiet spell syncs at once, the next waits for the
// token), and each worker picks the POSTed backends up on its next poll,
// every Poll (BACKENDS_SYNC_INTERVAL). So a change reaches the workers
// within Interval + Poll (defaults.NginxSyncLag), sooner when the bucket
// is full. The controller's own watch latency is not modelled (no figure
// is published). Apply is what the workers' pick-up does here: a reload.
type Syncer struct {
	Interval, Poll time.Duration
	Apply          func(eps []netip.AddrPort)
	// OnApply, if set, is told of every applied set (the ground truth).
	OnApply func(at time.Time, eps []netip.AddrPort)

	mu       sync.Mutex
	epoch    time.Time // the workers' poll phase
	latest   []netip.AddrPort
	applied  []netip.AddrPort
	lastSync time.Time
	pending  bool
	closed   bool
}

// Start sets the poll phase; the first set is applied by the caller.
func (s *Syncer) Start(eps []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch, s.latest, s.applied = time.Now(), slices.Clone(eps), slices.Clone(eps)
}

// Update hands the syncer the Service's ready endpoints as they are now.
func (s *Syncer) Update(eps []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = slices.Clone(eps)
	if s.pending || s.closed {
		return
	}
	s.pending = true
	wait := max(0, time.Until(s.lastSync.Add(s.Interval)))
	time.AfterFunc(wait, s.sync)
}

// sync is the controller's sync: it takes the endpoints as they are then
// and hands them to the workers' next poll.
func (s *Syncer) sync() {
	s.mu.Lock()
	s.pending, s.lastSync = false, time.Now()
	eps := slices.Clone(s.latest)
	next := s.Poll - time.Since(s.epoch)%s.Poll
	s.mu.Unlock()
	time.AfterFunc(next, func() { s.apply(eps) })
}

// apply reloads with eps unless the set is what the workers have, as a
// worker only swaps its balancer when the backends changed.
func (s *Syncer) apply(eps []netip.AddrPort) {
	s.mu.Lock()
	if s.closed || slices.Equal(eps, s.applied) {
		s.mu.Unlock()
		return
	}
	s.applied = eps
	s.mu.Unlock()
	s.Apply(eps)
	if s.OnApply != nil {
		s.OnApply(time.Now(), eps)
	}
}

// Close stops every later apply.
func (s *Syncer) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
