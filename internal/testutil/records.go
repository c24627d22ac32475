package testutil

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// Records collects timeline records from concurrent writers; its Add is a
// timeline.Sink that never fails.
type Records struct {
	mu   sync.Mutex
	recs []timeline.Record
}

// Add keeps a copy of r.
func (s *Records) Add(r *timeline.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, *r)
	return nil
}

// All returns a copy of the records, in time order.
func (s *Records) All() []timeline.Record {
	s.mu.Lock()
	out := append([]timeline.Record(nil), s.recs...)
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// TB is the part of testing.TB WaitOK needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// WaitOK waits, bounded at 30 s, until url answers 200.
func WaitOK(t TB, url string) {
	t.Helper()
	for range 300 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
