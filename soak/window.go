package soak

import (
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// maxSeen bounds the versions or replicas remembered per rollout window,
// so an app answering with a unique value per request cannot grow memory.
const maxSeen = 1024

// window is one rollout's share of the traffic: requests sent from its
// patch until the next rollout's patch (its end: complete, new version
// seen, settle done). Its counts become the rollout's Result once the
// requests sent inside it can no longer be in flight.
type window struct {
	res     Result
	end     time.Time // zero while open
	byKey   bool      // expected holds replicas (true) or versions (false)
	firstOK map[string]time.Time
	expect  map[string]bool
	seen    time.Time
	seenCh  chan struct{}
	timer   *time.Timer
	done    bool
}

// tally counts requests, attributes them to windows and emits each
// rollout's Result in order. Everything goes through its mutex: the
// prober's sink goroutine, the rollout loop and the finalize timers.
type tally struct {
	mu       sync.Mutex
	sink     func(*timeline.Record) error
	sinkErr  error
	inFlight time.Duration // how long after a window ends its requests may still complete
	onResult func(*Result)
	metrics  Metrics

	total   Total
	windows []*window // open, or closed and waiting to be finalized, oldest first
	firstOK chan struct{}
	okSeen  bool
	lastErr string // the last failed request's error, for a URL that never answers
}

func newTally(sink func(*timeline.Record) error, inFlight time.Duration, onResult func(*Result), m Metrics) *tally {
	return &tally{sink: sink, inFlight: inFlight, onResult: onResult, metrics: m,
		total: Total{Failures: map[timeline.Class]uint64{}, Unattributed: map[timeline.Class]uint64{}}, firstOK: make(chan struct{})}
}

// write passes a record to the sink; the first sink error sticks.
func (t *tally) write(r *timeline.Record) error {
	if t.sinkErr == nil && t.sink != nil {
		t.sinkErr = t.sink(r)
	}
	return t.sinkErr
}

// request is the prober's sink.
func (t *tally) request(r *timeline.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.write(r); err != nil {
		return err
	}
	if r.Kind != timeline.KindRequest {
		return nil
	}
	failed := r.Failed()
	if failed && !t.okSeen {
		// The URL has not answered yet (the app is starting, or the URL is
		// wrong, which ready() reports): not a loss of any rollout.
		t.total.BeforeReady++
		t.lastErr = string(r.Class) + " " + r.Error
		return nil
	}
	t.total.Requests++
	if failed {
		t.total.Failures[r.Class]++
		t.total.Lost++
		t.lastErr = string(r.Class) + " " + r.Error
	} else if !t.okSeen {
		t.okSeen = true
		close(t.firstOK)
	}
	if t.metrics != nil {
		t.metrics.Request(r.Class)
	}
	w := t.windowAt(r.Time)
	if w == nil {
		if failed {
			t.total.Unattributed[r.Class]++
		}
		return nil
	}
	w.res.Requests++
	if failed {
		w.res.Failures[r.Class]++
		w.res.Lost++
		return nil
	}
	key := r.Version
	if w.byKey {
		key = r.Replica
	}
	if key == "" {
		return nil
	}
	if at, ok := w.firstOK[key]; !ok && len(w.firstOK) < maxSeen || ok && r.Time.Before(at) {
		w.firstOK[key] = r.Time
	}
	w.match()
	return nil
}

// windowAt finds the window a request sent at ts belongs to.
func (t *tally) windowAt(ts time.Time) *window {
	for i := len(t.windows) - 1; i >= 0; i-- {
		w := t.windows[i]
		if !ts.Before(w.res.Started) && (w.end.IsZero() || ts.Before(w.end)) {
			if w.done {
				return nil // finalized already: only counted in the total
			}
			return w
		}
	}
	return nil
}

// match records when an expected version first answered.
func (w *window) match() {
	if !w.seen.IsZero() || w.expect == nil {
		return
	}
	for k := range w.expect {
		if at, ok := w.firstOK[k]; ok && (w.seen.IsZero() || at.Before(w.seen)) {
			w.seen = at
		}
	}
	if !w.seen.IsZero() {
		close(w.seenCh)
	}
}

// open starts rollout n's window at start.
func (t *tally) open(n int, start time.Time) *window {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := &window{res: Result{Rollout: n, Started: start, Failures: map[timeline.Class]uint64{}},
		firstOK: map[string]time.Time{}, seenCh: make(chan struct{})}
	t.windows = append(t.windows, w)
	return w
}

// expect sets what proves the new version answers: a version value or
// the names of the new replicas (byReplica).
func (t *tally) expect(w *window, values map[string]bool, byReplica bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.byKey != byReplica {
		w.firstOK = map[string]time.Time{} // keyed the other way until now
	}
	w.byKey, w.expect = byReplica, values
	w.match()
}

// seenAt is when the expected version first answered (zero: not yet).
func (t *tally) seenAt(w *window) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return w.seen
}

// update changes w's result under the lock.
func (t *tally) update(w *window, fn func(*Result)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&w.res)
}

// mark writes a rollout record.
func (t *tally) mark(r *timeline.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.write(r)
}

// close ends w at end; its Result follows once requests sent before end
// have completed or timed out.
func (t *tally) close(w *window, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w.end = end
	w.timer = time.AfterFunc(t.inFlight, func() { t.finalizeThrough(w) })
}

// finalizeThrough emits every closed window up to and including w, oldest
// first, and forgets them: soak's memory does not grow with rollouts.
func (t *tally) finalizeThrough(w *window) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.windows) > 0 {
		x := t.windows[0]
		if x.end.IsZero() {
			return
		}
		t.finalize(x)
		if x == w {
			return
		}
	}
}

// finalizeAll emits every window (the prober has stopped: nothing is in
// flight any more).
func (t *tally) finalizeAll(end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.windows) > 0 {
		x := t.windows[0]
		if x.end.IsZero() {
			x.end = end
		}
		t.finalize(x)
	}
}

func (t *tally) finalize(w *window) {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.done = true
	t.windows = t.windows[1:]
	r := &w.res
	if !w.seen.IsZero() {
		s := w.seen.Sub(r.Started).Seconds()
		r.NewVersionSeenAfter = &s
	}
	r.WindowEnd = w.end
	r.Result = r.outcome()
	t.total.add(r)
	if t.metrics != nil {
		t.metrics.Rollout(r)
	}
	if t.onResult != nil {
		t.onResult(r)
	}
}

// snapshot copies the running totals.
func (t *tally) snapshot() Total {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total.clone()
}
