package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// Run sends requests as cfg says until the schedule ends or ctx is done,
// streams every record to sink (may be nil) and returns the summary. The
// sink gets the records in completion order from Run's own goroutine, one
// at a time, so it need not be safe for concurrent use unless it is shared.
//
// When ctx is cancelled no new request is sent; requests in flight finish
// or time out (cfg.Timeout), their records still reach sink, and Summary
// has Interrupted set. A sink error stops the run as cancelling does, and
// later records reach only the Summary: a recording with holes would
// mislead. An error is returned only for a bad Config or a failing sink;
// request failures are data, not errors.
func Run(ctx context.Context, cfg Config, sink timeline.Sink) (*Summary, error) {
	cfg, u, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tr := newTransport(&cfg)
	defer tr.CloseIdleConnections()
	q := newRequester(&cfg, u)

	// stop ends scheduling: on ctx, or when the sink fails.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := cfg.Epoch
	if start.IsZero() {
		start = time.Now()
	}
	sch := newSchedule(&cfg, start)
	records := make(chan *timeline.Record, 4*cfg.Connections)
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := http.RoundTripper(tr)
			if direct(&cfg, u) {
				h := newH1Conn(&cfg, dialer(&cfg), hostPort(u))
				defer h.close()
				rt = h
			}
			work(stopCtx, sch, q, rt, records)
		}()
	}
	go func() { wg.Wait(); close(records) }()

	sum := NewSummary(cfg.Rate/float64(cfg.Shard.Of), cfg.LateAfter, cfg.Timeout)
	var sinkErr error
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case r, ok := <-records:
			if !ok {
				done = true
				break
			}
			sum.Add(r)
			if sink != nil && sinkErr == nil {
				if sinkErr = sink(r); sinkErr != nil {
					stop() // keep draining so workers finish
				}
			}
		case <-tick.C:
			if cfg.Progress != nil {
				cfg.Progress(sum)
			}
		}
	}
	sum.Interrupted = ctx.Err() != nil
	sum.Close()
	if sinkErr != nil {
		return sum, fmt.Errorf("recording: %w", sinkErr)
	}
	return sum, nil
}

// schedule hands out sequence numbers and their due times. Workers take
// the next number when free; a number whose due time has passed is sent at
// once and counts as late, so a slow server shows up as lateness and
// latency (measured from the due time), never as a quietly lower rate.
//
// A sharded schedule (Config.Shard) hands out every of-th slot from
// index+1; a worker that starts after the epoch begins at its first slot
// not yet due, so it never bursts to catch up slots from before it ran
// (those slots were never sent, by any worker).
type schedule struct {
	next     atomic.Uint64
	start    time.Time
	interval float64 // ns between slots of the whole run; 0 for as fast as possible
	limit    uint64  // max slot number, 0 for none
	end      time.Time
	index    uint64 // this worker's shard and the number of shards
	of       uint64
}

func newSchedule(cfg *Config, start time.Time) *schedule {
	s := &schedule{start: start, limit: cfg.Requests, index: uint64(cfg.Shard.Index), of: uint64(cfg.Shard.Of)}
	if cfg.Rate > 0 {
		s.interval = float64(time.Second) / cfg.Rate
	}
	if cfg.Duration > 0 {
		s.end = start.Add(cfg.Duration)
	}
	if late := time.Since(start); s.interval > 0 && late > 0 {
		// Skip this worker's slots already due: k-th slot due at
		// (k*of+index)*interval; start at the first one not before now.
		slots := uint64(float64(late) / s.interval)
		if slots > s.index {
			s.next.Store((slots - s.index + s.of - 1) / s.of)
		}
	}
	return s
}

// take returns the next slot number (from 1; the record's Seq) and its
// due time (zero when unscheduled), or ok=false when the schedule is over.
func (s *schedule) take() (seq uint64, due time.Time, ok bool) {
	seq = (s.next.Add(1)-1)*s.of + s.index + 1
	if s.limit > 0 && seq > s.limit {
		return 0, time.Time{}, false
	}
	if s.interval == 0 {
		if !s.end.IsZero() && !time.Now().Before(s.end) {
			return 0, time.Time{}, false
		}
		return seq, time.Time{}, true
	}
	due = s.start.Add(time.Duration(float64(seq-1) * s.interval))
	if !s.end.IsZero() && !due.Before(s.end) {
		return 0, time.Time{}, false
	}
	return seq, due, true
}

// direct says a worker can keep its own connection (h1Conn): plain http
// with keep-alive. https (ALPN, h2) and --new-conn go through the Transport.
func direct(cfg *Config, u *url.URL) bool { return directHTTP1 && u.Scheme == "http" && !cfg.NewConn }

// directHTTP1 is off only in tests that hold the Transport path to the
// same wire bytes and the same single attempt as the direct one.
var directHTTP1 = true

func hostPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return net.JoinHostPort(u.Hostname(), p)
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func work(ctx context.Context, sch *schedule, q *requester, rt http.RoundTripper, out chan<- *timeline.Record) {
	buf := make([]byte, 32<<10)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for ctx.Err() == nil {
		seq, due, ok := sch.take()
		if !ok {
			return
		}
		if wait := time.Until(due); !due.IsZero() && wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		out <- q.do(seq, due, buf, rt)
	}
}
