package probe

import (
	"context"
	"fmt"
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
	q := newRequester(&cfg, u, tr)

	// stop ends scheduling: on ctx, or when the sink fails.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	sch := newSchedule(&cfg, time.Now())
	records := make(chan *timeline.Record, 4*cfg.Connections)
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(stopCtx, sch, q, records)
		}()
	}
	go func() { wg.Wait(); close(records) }()

	sum := NewSummary(cfg.Rate, cfg.LateAfter, cfg.Timeout)
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
type schedule struct {
	next     atomic.Uint64
	start    time.Time
	interval float64 // ns between sends; 0 for as fast as possible
	limit    uint64  // max requests, 0 for none
	end      time.Time
}

func newSchedule(cfg *Config, start time.Time) *schedule {
	s := &schedule{start: start, limit: cfg.Requests}
	if cfg.Rate > 0 {
		s.interval = float64(time.Second) / cfg.Rate
	}
	if cfg.Duration > 0 {
		s.end = start.Add(cfg.Duration)
	}
	return s
}

// take returns the next sequence number (from 1) and its due time (zero
// when unscheduled), or ok=false when the schedule is over.
func (s *schedule) take() (seq uint64, due time.Time, ok bool) {
	seq = s.next.Add(1)
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

func work(ctx context.Context, sch *schedule, q *requester, out chan<- *timeline.Record) {
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
		out <- q.do(seq, due, buf)
	}
}
