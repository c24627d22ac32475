package report

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
			r.Status, r.Class, r.Cause = 502, timeline.ClassHTTP502, timeline.CauseDrainingTargetExited
		case i == 200:
			r.Status, r.Class, r.Replica, r.Error, r.Latency = 0, timeline.ClassTimeout, "", "context deadline exceeded "+evil, time.Second
		case i == 201:
			r.Replica = evil
		}
		reqs = append(reqs, r)
	}
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	states = append(states,
		&timeline.Record{Kind: timeline.KindPod, Time: at(0), Object: "pod-old", State: "Ready"},
		&timeline.Record{Kind: timeline.KindPod, Time: at(500), Object: "pod-new", State: "Pending"},
		&timeline.Record{Kind: timeline.KindPod, Time: at(1000), Object: "pod-new", State: "Ready"},
		&timeline.Record{Kind: timeline.KindPod, Time: at(1300), Object: "pod-old", State: "Terminating"},
		&timeline.Record{Kind: timeline.KindPod, Time: at(1400), Object: "pod-old", State: "Exited", Reason: "SIGTERM"},
		&timeline.Record{Kind: timeline.KindTarget, Time: at(0), Object: "127.0.1.1:1325", State: "healthy"},
		&timeline.Record{Kind: timeline.KindTarget, Time: at(1300), Object: "127.0.1.1:1325", State: "draining"},
		&timeline.Record{Kind: timeline.KindTarget, Time: at(700), Object: "127.0.1.2:1325", State: "initial"},
		&timeline.Record{Kind: timeline.KindTarget, Time: at(1200), Object: "127.0.1.2:1325", State: "healthy"},
		&timeline.Record{Kind: timeline.KindRollout, Time: at(400), Object: "demo", State: "started", Reason: evil},
	)
	write := func(name string, recs []*timeline.Record) string {
		p := filepath.Join(dir, name)
		w, err := timeline.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("probe.ndjson", reqs), write("cluster.ndjson", states), reqs
}

func TestBuildNumbers(t *testing.T) {
	reqFile, stateFile, reqs := fixture(t)
	rep, err := Build([]string{reqFile, stateFile}, Options{})
	if err != nil {
		t.Fatal(err)
	}
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
	if len(rep.Causes) != 1 || rep.Causes[0] != (CauseCount{timeline.ClassHTTP502, timeline.CauseDrainingTargetExited, 10}) {
		t.Errorf("causes %+v", rep.Causes)
	}
	if len(rep.Failures) != 11 || rep.Failures[0].AtMS != 1400 || rep.Failures[10].Class != timeline.ClassTimeout {
		t.Errorf("failures %+v", rep.Failures)
	}
	if len(rep.Lanes) != 4 || len(rep.Marks) != 1 {
		t.Fatalf("lanes %+v marks %+v", rep.Lanes, rep.Marks)
	}
	old := rep.Lanes[0] // pods sort before targets
	if old.Object != "pod-old" || len(old.Segments) != 3 || old.Segments[1] != (Segment{State: "Terminating", FromMS: 1300, ToMS: 1400}) {
		t.Errorf("pod-old lane %+v", old)
	}
	// JSON round trip keeps the numbers.
	b, _ := json.Marshal(rep)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Summary.Requests != 300 || len(back.Bins) != 31 {
		t.Errorf("json round trip: %v", err)
	}
}

func TestBuildBadInput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.ndjson")
	os.WriteFile(p, []byte(`{"kind":"request","time":"2026-11-23T10:00:00Z","class":"ok"}`+"\n{oops\n"), 0o644)
	_, err := Build([]string{p}, Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.ndjson:2") {
		t.Errorf("err = %v, want file:2", err)
	}
	os.WriteFile(p, []byte(`{"kind":"request","class":"ok"}`+"\n"), 0o644)
	if _, err := Build([]string{p}, Options{}); err == nil || !strings.Contains(err.Error(), "bad.ndjson:1") {
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
	rep, err := Build([]string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bins) > 2000 || rep.BinMS != 1900 {
		t.Errorf("%d bins of %v ms for an hour", len(rep.Bins), rep.BinMS)
	}
}

// chromium finds Debian's chromium; without it the test skips, except in CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (Debian package chromium)")
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("chromium hung\n%s", stderr.String())
	}
	return stdout.Bytes()
}

// The page opened in a real browser: it renders, the charts and tables are
// there, the screenshot is not blank, and no hostile string became markup.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	reqFile, stateFile, _ := fixture(t)
	rep, err := Build([]string{reqFile, stateFile}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	f, _ := os.Create(page)
	if err := HTML(f, rep); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, _ := os.ReadFile(page)
	for _, bad := range []string{"<script", "<img", "<link", "<iframe", "<object", "url("} { // no code, nothing to fetch
		if bytes.Contains(bytes.ToLower(raw), []byte(bad)) {
			t.Errorf("page source contains %q", bad)
		}
	}

	dom := string(runChromium(t, bin, "--dump-dom", "file://"+page))
	for _, id := range []string{`id="summary"`, `id="outcomes"`, `id="latency"`, `id="replicas"`, `id="lanes"`, `id="causes"`, `id="failures"`, `id="failure-classes"`} {
		if !strings.Contains(dom, id) {
			t.Errorf("rendered DOM has no %s", id)
		}
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<img") {
		t.Errorf("hostile string became markup in the DOM")
	}
	if !strings.Contains(dom, "&lt;script&gt;document.title=") || !strings.Contains(dom, "draining_target_exited") {
		t.Errorf("hostile string or cause not shown as text")
	}
	if strings.Contains(dom, "<title>pwned") {
		t.Error("script ran")
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,1400", "--hide-scrollbars", "file://"+page)
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	colors := map[[3]uint32]int{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 3 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	// The chart palette: ok green and 502 red must be on screen.
	if len(colors) < 20 || colors[[3]uint32{0x4c, 0xaf, 0x50}] == 0 || colors[[3]uint32{0xe5, 0x39, 0x35}] == 0 {
		t.Errorf("screenshot looks blank or chartless: %d colours, green %d, red %d", len(colors),
			colors[[3]uint32{0x4c, 0xaf, 0x50}], colors[[3]uint32{0xe5, 0x39, 0x35}])
	}
	if os.Getenv("ROLLSAFE_KEEP") != "" {
		os.WriteFile(os.Getenv("ROLLSAFE_KEEP")+".png", mustRead(shot), 0o644)
		os.WriteFile(os.Getenv("ROLLSAFE_KEEP")+".html", raw, 0o644)
	}
}

func mustRead(p string) []byte { b, _ := os.ReadFile(p); return b }
