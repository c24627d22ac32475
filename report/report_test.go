package report

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

const evil = `<script>document.title="pwned"</script><img src=x onerror=alert(1)>`

// fixture writes a 3 s rollout: 300 requests at 100/s across two replicas,
// 502s from a draining target in the middle, a timeout, hostile strings in
// a header value and an error, and pod and target lanes.
func fixture(t *testing.T) (string, string, []*timeline.Record) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var reqs, states []*timeline.Record
	for i := range 300 {
		due := start.Add(time.Duration(i) * 10 * time.Millisecond)
		r := &timeline.Record{Kind: timeline.KindRequest, Time: due.Add(50 * time.Microsecond), Scheduled: due, Source: "probe",
			Seq: uint64(i + 1), Latency: time.Duration(1+i%7) * time.Millisecond, Status: 200, Class: timeline.ClassOK,
			Replica: "pod-old", Bytes: 2}
		if i >= 150 {
			r.Replica = "pod-new"
		}
		switch {
		case i >= 140 && i < 150:
			r.Status, r.Class, r.Replica = 502, timeline.ClassHTTP502, ""
		case i == 200:
			r.Status, r.Class, r.Replica, r.Error, r.Latency = 0, timeline.ClassTimeout, "", "context deadline exceeded "+evil, time.Second
		case i == 201:
			r.Replica = evil
		}
		reqs = append(reqs, r)
	}
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	pod := func(ms int, name, state, ip string) *timeline.Record {
		return &timeline.Record{Kind: timeline.KindPod, Source: "kube", Time: at(ms), Object: name, State: state, Attrs: map[string]string{"ip": ip}}
	}
	target := func(ms int, key, state string) *timeline.Record {
		return &timeline.Record{Kind: timeline.KindTarget, Source: "elbv2", Time: at(ms), Object: key, State: state,
			Attrs: map[string]string{"prev_poll": at(ms - 100).Format(time.RFC3339Nano)}}
	}
	states = append(states,
		pod(0, "pod-old", "Ready", "127.0.1.1"),
		pod(500, "pod-new", "Pending", "127.0.1.2"),
		pod(1000, "pod-new", "Ready", "127.0.1.2"),
		pod(1300, "pod-old", "Terminating", "127.0.1.1"),
		pod(1400, "pod-old", "Exited", "127.0.1.1"),
		target(0, "127.0.1.1:1325", "healthy"),
		target(1300, "127.0.1.1:1325", "draining"),
		target(700, "127.0.1.2:1325", "initial"),
		target(1200, "127.0.1.2:1325", "healthy"),
		&timeline.Record{Kind: timeline.KindRollout, Time: at(400), Object: "demo", State: "started", Reason: evil},
	)
	return testutil.WriteTimeline(t, filepath.Join(dir, "probe.ndjson"), reqs),
		testutil.WriteTimeline(t, filepath.Join(dir, "cluster.ndjson"), states), reqs
}

func TestBuildNumbers(t *testing.T) {
	reqFile, stateFile, reqs := fixture(t)
	out, err := Build(context.Background(), []string{reqFile, stateFile}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 1 {
		t.Fatalf("%d runs", len(out.Runs))
	}
	rep := out.Runs[0]
	// Totals are exactly the prober's own numbers for the same records.
	want := probe.NewSummary(0, probe.DefaultLateAfter, probe.DefaultTimeout)
	for _, r := range reqs {
		want.Add(r)
	}
	want.Close()
	if rep.Summary.Requests != 300 || rep.Summary.OK != 289 || rep.Summary.LatencyMS != want.LatencyMS ||
		rep.Summary.Failures[timeline.ClassHTTP502] != 10 || rep.Summary.Failures[timeline.ClassTimeout] != 1 {
		t.Errorf("summary %+v\nwant %+v", rep.Summary, want)
	}
	if rep.BinMS != 100 || len(rep.Bins) != 31 {
		t.Errorf("bin %v ms, %d bins; want 100 ms, 31", rep.BinMS, len(rep.Bins))
	}
	b14 := rep.Bins[14] // 1.4 s–1.5 s: the ten 502s
	if b14.Requests != 10 || b14.Failures[timeline.ClassHTTP502] != 10 || b14.OK != 0 {
		t.Errorf("bin 14: %+v", b14)
	}
	if b := rep.Bins[3]; b.P50 != 4 || b.Max != 7 || b.Replicas["pod-old"] != 10 {
		t.Errorf("bin 3: %+v", b) // latencies 3,4,5,6,7,1,2,3,4,5 ms
	}
	if b := rep.Bins[20]; b.Requests != 10 || b.Max != 7 {
		t.Errorf("bin 20: %+v; the 1 s timeout must not be in the latency of answered requests", b)
	}
	// No access log: the failures' target is inferred (the one registered
	// target whose pod had exited: the draining one), so they are likely,
	// not certain.
	causes := rep.Attribution.Causes
	if len(causes) != 1 || causes[0].Cause != timeline.CauseDrainingTargetExited || causes[0].Count != 11 || causes[0].Likely != 11 {
		t.Errorf("causes %+v", causes)
	}
	if len(rep.Failures) != 11 || rep.Failures[0].AtMS != 1400.05 || rep.Failures[10].Class != timeline.ClassTimeout ||
		rep.Failures[0].Target != "127.0.1.1:1325" || rep.Failures[0].Pod != "pod-old" {
		t.Errorf("failures %+v", rep.Failures[0])
	}
	if len(rep.Lanes) != 4 || len(rep.Marks) != 1 {
		t.Fatalf("lanes %+v marks %+v", rep.Lanes, rep.Marks)
	}
	old := rep.Lanes[0] // pods sort before targets
	if old.Object != "pod-old" || len(old.Segments) != 3 || old.Segments[1] != (Segment{State: "Terminating", FromMS: 1300, ToMS: 1400}) {
		t.Errorf("pod-old lane %+v", old)
	}
	// JSON round trip keeps the numbers.
	b, _ := json.Marshal(out)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Runs[0].Summary.Requests != 300 || len(back.Runs[0].Bins) != 31 ||
		back.Runs[0].Failures[0].Cause != timeline.CauseDrainingTargetExited {
		t.Errorf("json round trip: %v", err)
	}
}

func TestBuildBadInput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.ndjson")
	os.WriteFile(p, []byte(`{"kind":"request","time":"2026-11-23T10:00:00Z","class":"ok"}`+"\n{oops\n"), 0o644)
	_, err := Build(context.Background(), []string{p}, Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.ndjson:2") {
		t.Errorf("err = %v, want file:2", err)
	}
	os.WriteFile(p, []byte(`{"kind":"request","class":"ok"}`+"\n"), 0o644)
	if _, err := Build(context.Background(), []string{p}, Options{}); err == nil || !strings.Contains(err.Error(), "bad.ndjson:1") {
		t.Errorf("err = %v, want file:1 (no time)", err)
	}
}

func TestLongRunWidensBins(t *testing.T) {
	p := filepath.Join(t.TempDir(), "long.ndjson")
	w, _ := timeline.Create(p)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3601 {
		w.Write(&timeline.Record{Kind: timeline.KindRequest, Time: start.Add(time.Duration(i) * time.Second), Class: timeline.ClassOK})
	}
	w.Close()
	out, err := Build(context.Background(), []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := out.Runs[0]
	if len(rep.Bins) > 2000 || rep.BinMS != 1900 {
		t.Errorf("%d bins of %v ms for an hour", len(rep.Bins), rep.BinMS)
	}
}

// The report's summary says what the prober's says when every request was
// idempotent (a proxy may have retried failures away), in JSON and on the
// page; one POST among them and it does not.
func TestIdempotentOnlyNote(t *testing.T) {
	_, _, reqs := fixture(t)
	for _, post := range []bool{false, true} {
		for _, r := range reqs {
			r.Method = "GET"
		}
		if post {
			reqs[7].Method = "POST"
		}
		file := testutil.WriteTimeline(t, filepath.Join(t.TempDir(), "probe.ndjson"), reqs)
		out, err := Build(context.Background(), []string{file}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		if err := HTML(&buf, out); err != nil {
			t.Fatal(err)
		}
		s := out.Runs[0].Summary
		noted := strings.Contains(buf.String(), `class="note hidden-retries">Note: every request was idempotent (GET 300)`)
		if s.IdempotentOnly == post || noted == post {
			t.Errorf("POST among them %v: idempotent_only %v, methods %v, page notes it %v", post, s.IdempotentOnly, s.Methods, noted)
		}
	}
}
