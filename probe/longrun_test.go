package probe

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// feed adds perSec request records due in each of secs seconds from t0,
// every tenth one a 502, with latencies cycling through 1..100 ms (1..perSec ms when perSec < 100).
func feed(s *Summary, t0 time.Time, from, secs, perSec int) {
	r := &timeline.Record{Kind: timeline.KindRequest, Replica: "pod-a", Status: 200}
	for sec := from; sec < from+secs; sec++ {
		for i := range perSec {
			r.Scheduled = t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*time.Second/time.Duration(perSec))
			r.Time = r.Scheduled
			r.Latency = time.Duration(1+i%100) * time.Millisecond
			r.Class = timeline.ClassOK
			if i%10 == 0 {
				r.Class = timeline.ClassHTTP502
			}
			s.Add(r)
		}
	}
}

func TestSummaryShortRunKeepsOneSecondRows(t *testing.T) {
	s := NewSummary(10, time.Millisecond, time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	feed(s, t0, 0, 5, 10)
	s.Close()
	if len(s.PerSecond) != 5 {
		t.Fatalf("%d rows, want 5", len(s.PerSecond))
	}
	for i, p := range s.PerSecond {
		if p.Seconds != 1 || !p.Time.Equal(t0.Add(time.Duration(i)*time.Second)) || p.Requests != 10 || p.Failures[timeline.ClassHTTP502] != 1 {
			t.Errorf("row %d: %+v", i, p)
		}
	}
}

func TestSummaryRollsUpLongRuns(t *testing.T) {
	s := NewSummary(10, time.Millisecond, time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	secs := 2*MaxRows + 100
	feed(s, t0, 0, secs, 10)
	// A straggler for second 5, long closed, still counts in its row.
	s.Add(&timeline.Record{Kind: timeline.KindRequest, Scheduled: t0.Add(5 * time.Second), Time: t0.Add(5 * time.Second), Class: timeline.ClassConnReset})
	s.Close()
	if len(s.PerSecond) > MaxRows {
		t.Fatalf("%d rows, want at most %d", len(s.PerSecond), MaxRows)
	}
	var reqs, ok, failed uint64
	for i, p := range s.PerSecond {
		if p.Seconds != 4 || !p.Time.Equal(t0.Add(time.Duration(4*i)*time.Second)) {
			t.Fatalf("row %d spans %ds from %v, want 4s from %v", i, p.Seconds, p.Time, t0.Add(time.Duration(4*i)*time.Second))
		}
		reqs, ok = reqs+p.Requests, ok+p.OK
		for _, n := range p.Failures {
			failed += n
		}
		if p.Max < 9.9 || p.Max > 10.1 { // 2 significant digits in a row's histogram
			t.Errorf("row %d: max %v ms, want 10 (±1%%)", i, p.Max)
		}
	}
	if want := uint64(secs*10 + 1); reqs != want || reqs != s.Requests || ok+failed != reqs || ok != s.OK {
		t.Errorf("rows count %d requests (%d ok, %d failed); summary %d (%d ok); want %d", reqs, ok, failed, s.Requests, s.OK, want)
	}
	if s.PerSecond[1].Failures[timeline.ClassConnReset] != 1 {
		t.Errorf("the straggler for second 5 is not in the row of seconds 4-7: %+v", s.PerSecond[1])
	}
}

// BenchmarkSummaryLongRun feeds a Summary six hours of traffic at
// 1000 req/s on a fake clock (21.6M records, time-compressed: as fast as
// Add runs) and logs the live heap and the process RSS every simulated
// 30 minutes. Run it once: go test -run '^$' -bench SummaryLongRun
// -benchtime 1x ./probe/. Flat after the first hour is the target: past
// MaxRows the per-second rows roll up instead of growing.
func BenchmarkSummaryLongRun(b *testing.B) {
	const rate, hours, step = 1000, 6, 30 * 60
	for b.Loop() {
		s := NewSummary(rate, time.Millisecond, DefaultTimeout)
		t0 := time.Unix(1_700_000_000, 0)
		var first, last float64
		for at := 0; at < hours*3600; at += step {
			feed(s, t0, at, step, rate)
			heap, rss := liveHeapMB(), rssMB()
			b.Logf("t=%4.1fh  records %9d  rows %4d (%ds each)  heap %5.2f MB  rss %5.1f MB",
				float64(at+step)/3600, s.Requests, len(s.PerSecond)+len(s.open), s.width, heap, rss)
			if at+step == 3600 {
				first = heap
			}
			last = heap
		}
		s.Close()
		b.ReportMetric(first, "heap-MB@1h")
		b.ReportMetric(last, "heap-MB@6h")
		b.ReportMetric(rssMB(), "rss-MB@6h")
	}
}

func liveHeapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// rssMB reads VmRSS from /proc (Linux); 0 elsewhere.
func rssMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
