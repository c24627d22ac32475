package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// BenchmarkRunRecorded measures max-throughput probing of a loopback
// server with every record streamed to a file, as `probe --rate 0
// --record` does. Reported: req/s. With ROLLSAFE_BENCH_URL set (a loopback
// server in another process, such as bench/probe/server) the server's
// work stays out of the process, so a -cpuprofile shows the client alone.
func BenchmarkRunRecorded(b *testing.B) {
	url := os.Getenv("ROLLSAFE_BENCH_URL")
	if url == "" {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Served-By", "bench-1")
			w.Write([]byte("ok\n"))
		}))
		defer ts.Close()
		url = ts.URL
	}
	w, err := timeline.Create(filepath.Join(b.TempDir(), "run.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sum, err := Run(context.Background(), Config{URL: url, Connections: 8, Requests: uint64(b.N)}, w.Write)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sum.Requests)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkSummaryAdd is the aggregation cost per record.
func BenchmarkSummaryAdd(b *testing.B) {
	s := NewSummary(1000, time.Millisecond, 10*time.Second)
	now := time.Now()
	r := &timeline.Record{Kind: timeline.KindRequest, Class: timeline.ClassOK, Replica: "pod-a", Latency: 3 * time.Millisecond}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Scheduled = now.Add(time.Duration(i) * time.Millisecond)
		r.Time = r.Scheduled
		s.Add(r)
	}
}

// BenchmarkRecordEncode is the cost of one record on the NDJSON stream.
func BenchmarkRecordEncode(b *testing.B) {
	f, err := os.Create(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	w := timeline.NewWriter(f)
	defer w.Close()
	now := time.Now()
	r := &timeline.Record{Kind: timeline.KindRequest, Time: now, Source: "probe", Seq: 123456, Scheduled: now,
		Latency: 1234567, Status: 200, Class: timeline.ClassOK, Bytes: 3, Replica: "pod-a",
		TraceID: "Root=1-6745a1b2-0a1b2c3d000000000001e240"}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRateAccuracy probes a loopback server at 1000 req/s, one
// request per iteration (-benchtime 10000x for a 10 s run), and reports
// the achieved rate (first to last send) over the target, the sends that
// started late and the worst lateness: a prober that cannot keep its
// schedule shows it here rather than in a timed test.
func BenchmarkRateAccuracy(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ts.Close()
	const rate = 1000
	b.ResetTimer()
	sum, err := Run(context.Background(), Config{URL: ts.URL, Rate: rate, Requests: uint64(b.N)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if sum.Requests != uint64(b.N) || sum.OK != sum.Requests {
		b.Fatalf("sent %d (ok %d), want %d", sum.Requests, sum.OK, b.N)
	}
	b.ReportMetric(sum.Rate/rate, "achieved/target")
	b.ReportMetric(float64(sum.Late), "late")
	b.ReportMetric(sum.MaxLateMS, "max-late-ms")
}
