package probe_test

import (
	"bufio"
	"context"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
	"github.com/rollsafe/rollsafe/probe/fleet"
	"github.com/rollsafe/rollsafe/timeline"
)

// Worker mode speaks the fleet protocol on stdout: one record per line for
// this worker's slots of the shared schedule, then its last line with the
// count, and nothing else (no summary).
func TestWorkerModeWritesItsShardThenItsCount(t *testing.T) {
	ts, served := counting(t)
	code, out, errOut := clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "10", "--rate", "200",
		"--worker-of", "2", "--worker-index", "1", "--run-id", "0badcafe")
	if code != cmdutil.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var seqs []uint64
	var end *timeline.Record
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		r := &timeline.Record{}
		if err := r.DecodeJSON(sc.Bytes()); err != nil {
			t.Fatalf("not a record: %q", sc.Text())
		}
		switch {
		case end != nil:
			t.Fatalf("a line after the last one: %q", sc.Text())
		case r.Kind == timeline.KindRequest:
			seqs = append(seqs, r.Seq)
			if !strings.Contains(r.TraceID, "-0badcafe") {
				t.Errorf("trace id %s lacks the run id", r.TraceID)
			}
		case r.Reason == fleet.EndReason:
			end = r
		}
	}
	if len(seqs) != 5 || served.Load() != 5 {
		t.Fatalf("slots %v (server saw %d), want 5: 2, 4, 6, 8, 10", seqs, served.Load())
	}
	for _, s := range seqs {
		if s%2 != 0 {
			t.Errorf("slot %d is not worker 1's of 2", s)
		}
	}
	if end == nil || end.Attrs["requests"] != "5" || end.Attrs["worker"] != "1" {
		t.Fatalf("last line %+v, want worker 1's count 5", end)
	}
}
