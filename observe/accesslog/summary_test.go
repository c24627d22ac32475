package accesslog

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

func TestSummaryMergeAndJoin(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2024, 3, 1, 10, 0, s, 0, time.UTC) }
	entry := func(target string, status, sec int) *Entry {
		e, err := Parse([]byte(realLines[5]))
		if err != nil {
			t.Fatal(err)
		}
		e.Target, e.ELBStatusCode, e.RequestCreationTime = []byte(target), status, at(sec)
		if target == "" {
			e.Target = nil
		}
		return &e
	}
	a, b := NewSummary(), NewSummary()
	a.MaxFailures, b.MaxFailures = 2, 2
	a.Visit(Pos{"f", 1}, entry("10.0.0.1:80", 200, 1))
	a.Visit(Pos{"f", 2}, entry("10.0.0.1:80", 502, 10)) // draining since 10: counts
	b.Visit(Pos{"g", 1}, entry("10.0.0.2:80", 504, 9))  // healthy at 9
	b.Visit(Pos{"g", 2}, entry("", 503, 70))            // never dispatched
	b.Visit(Pos{"g", 3}, entry("10.0.0.1:80", 502, 71)) // over MaxFailures after merge
	a.Merge(b)
	a.SortFailures()

	if a.Requests != 5 || a.Failures != 4 || len(a.FailureList) != 2 || a.FailuresNotListed != 2 {
		t.Fatalf("requests %d failures %d listed %d not listed %d", a.Requests, a.Failures, len(a.FailureList), a.FailuresNotListed)
	}
	if c := a.Targets["10.0.0.1:80"]; c.Requests != 3 || c.Failures != 2 {
		t.Errorf("10.0.0.1:80 %+v", c)
	}
	if c := a.Targets[NoTarget]; c == nil || c.Failures != 1 {
		t.Errorf("undispatched %+v", c)
	}
	if m := a.Minutes[at(0).Unix()/60]; m.Requests != 3 || m.Failures != 2 {
		t.Errorf("minute 10:00 %+v", m)
	}
	if !a.First.Equal(at(1)) || !a.Last.Equal(at(71)) {
		t.Errorf("first %v last %v", a.First, a.Last)
	}

	ix := NewTargetIndex([]timeline.Record{
		{Kind: timeline.KindTarget, Time: at(10), Object: "10.0.0.1:80", State: "draining"},
		{Kind: timeline.KindTarget, Time: at(0), Object: "10.0.0.1:80", State: "healthy"},
		{Kind: timeline.KindTarget, Time: at(0), Object: "10.0.0.2:80", State: "healthy"},
		{Kind: timeline.KindPod, Time: at(0), Object: "10.0.0.2:80", State: "draining"}, // not a target record
	})
	draining := a.JoinTargets(ix)
	if len(draining) != 1 || draining[0].Pos != "f:2" || draining[0].TargetState != "draining" {
		t.Errorf("draining %+v", draining)
	}
	if a.FailureList[0].Pos != "g:1" || a.FailureList[0].TargetState != "healthy" {
		t.Errorf("failure list %+v", a.FailureList)
	}
	if _, ok := ix.At("10.0.0.1:80", at(0).Add(-time.Nanosecond)); ok {
		t.Error("state known before the first record")
	}
}

func TestRootTraceID(t *testing.T) {
	for in, want := range map[string]string{
		"Root=1-65e1a6b1-0123456789abcdef01234567":                        "Root=1-65e1a6b1-0123456789abcdef01234567",
		"Self=1-65e1a6b4-aa;Root=1-65e1a6b4-0123456789abcdef01234567;x=y": "Root=1-65e1a6b4-0123456789abcdef01234567",
		"custom": "custom",
	} {
		if got := string(RootTraceID([]byte(in))); got != want {
			t.Errorf("RootTraceID(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkScanGzip measures the whole read path — gunzip, split, parse,
// summarise — on one gzipped file, in uncompressed MB/s.
func BenchmarkScanGzip(b *testing.B) {
	var raw bytes.Buffer
	for i := 0; raw.Len() < 32<<20; i++ {
		raw.WriteString(logLine(i))
		raw.WriteByte('\n')
	}
	path := b.TempDir() + "/bench.log.gz"
	writeGz(b, path, raw.Bytes())
	b.SetBytes(int64(raw.Len()))
	b.ResetTimer()
	for b.Loop() {
		st, err := Scan(context.Background(), []string{path}, Options{}, func() Visitor { return NewSummary() })
		if err != nil || !st.Clean() {
			b.Fatal(err, st.Problems)
		}
	}
}
