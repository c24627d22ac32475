package alb

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/rollsafe/rollsafe/timeline"
)

// A failing sink gets nothing more from the health checkers, and Err and
// Close say why.
func TestSinkErrorIsKept(t *testing.T) {
	bs := startBackends(t, "127.0.0.50")
	boom := errors.New("disk full")
	var calls atomic.Int64
	cfg := testConfig(nil, nil)
	cfg.Sink = func(*timeline.Record) error { calls.Add(1); return boom }
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs[0]) // turning healthy is a record the sink never gets
	if err := lb.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v, want disk full", err)
	}
	if !errors.Is(lb.Err(), boom) {
		t.Errorf("Err() = %v, want disk full", lb.Err())
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the sink got %d records, want 1 (none after its error)", n)
	}
}

// An access log that cannot be written fails the LB from the request path.
func TestAccessLogErrorIsKept(t *testing.T) {
	bs := startBackends(t, "127.0.0.51")
	boom := errors.New("disk full")
	lb := newLB(t, testConfig(nil, failingWriter{boom}))
	registerHealthy(t, lb, bs[0])
	if code, _, _ := get(t, lb.URL()+"/"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if err := lb.FlushAccessLog(); !errors.Is(err, boom) {
		t.Errorf("FlushAccessLog() = %v, want disk full", err)
	}
	if err := lb.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v, want disk full", err)
	}
	if !errors.Is(lb.Err(), boom) {
		t.Errorf("Err() = %v, want disk full", lb.Err())
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
