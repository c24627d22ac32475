package lab_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/timeline"
)

// A lab run whose recording breaks stops and returns the error: its sink
// gets nothing after its first error, and an access log that cannot be
// written fails the run as well.
func TestRecordingErrorStopsTheRun(t *testing.T) {
	ss, err := lab.Lookup("recommended")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	const failAt = 50
	var calls atomic.Int64
	failing := func(*timeline.Record) error {
		if calls.Add(1) == failAt {
			return boom
		}
		return nil
	}
	cases := []struct {
		name string
		o    lab.Options
	}{
		{"sink", lab.Options{Sink: failing}},
		{"access log", lab.Options{AccessLog: failingWriter{boom}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls.Store(0)
			o := c.o
			o.TimeScale, o.Rollouts, o.App = 0.05, 1, []string{demoBin}
			res, err := lab.Run(context.Background(), ss[0], o)
			if !errors.Is(err, boom) || res != nil {
				t.Fatalf("Run: result %v, err %v; want no result and disk full", res, err)
			}
			if n := calls.Load(); c.o.Sink != nil && n != failAt {
				t.Errorf("the sink got %d records, want %d (none after its error)", n, failAt)
			}
			t.Logf("%v", err)
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
