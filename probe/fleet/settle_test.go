package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// How a worker's end is judged from what arrived, case by case (the
// end-to-end test covers a killed worker and one that never started).
func TestSettle(t *testing.T) {
	for _, c := range []struct {
		name        string
		w           worker
		records     int
		interrupted bool
		state       State
		why         string
	}{
		{"done", worker{started: true, ended: true, exit: "exit 0", Worker: Worker{Reported: 3}}, 3, false, Done, ""},
		{"stopped by ctrl-c", worker{started: true, ended: true, stopped: true, exit: "exit 0", Worker: Worker{Reported: 3}}, 3, true, Stopped, ""},
		{"evicted", worker{started: true, ended: true, stopped: true, exit: "exit 0", Worker: Worker{Reported: 3}}, 3, false, Died, "stopped (SIGTERM) before its schedule ended"},
		{"records lost", worker{started: true, ended: true, exit: "exit 0", Worker: Worker{Reported: 4}}, 3, false, Died, "it sent 4 requests, 3 records arrived"},
		{"killed", worker{started: true, cut: true, exit: "exit 137 (signal 9)", Worker: Worker{Reported: -1}}, 2, false, Died, "exit 137 (signal 9); its last line was cut; its log ended without its last line, after 2 records"},
		{"failed", worker{started: true, ended: true, exit: "exit 3", Worker: Worker{Reported: 0}}, 0, false, Died, "exit 3"},
	} {
		m := newMerger(&Options{Workers: 1, Rate: 10, LateAfter: time.Millisecond, Timeout: time.Second}, nil)
		m.interrupted = c.interrupted
		w := m.workers[0]
		c.w.Worker.Summary = w.Summary
		*w = c.w
		for range c.records {
			w.Summary.Add(&timeline.Record{Kind: timeline.KindRequest, Class: timeline.ClassOK, Time: time.Now()})
		}
		m.settle(w)
		if w.State != c.state || !strings.Contains(w.Reason, c.why) || (c.why == "" && w.Reason != "") {
			t.Errorf("%s: %s (%s), want %s (%s)", c.name, w.State, w.Reason, c.state, c.why)
		}
	}
}
