package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
	"github.com/rollsafe/rollsafe/timeline"
)

// every 4th request gets a 502.
func flaky502(t *testing.T) *httptest.Server {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestJSONShapeRecordAndBudget(t *testing.T) {
	ts := flaky502(t)
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	code, out, errOut := clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "40", "--rate", "500", "--record", rec,
		"--output", "json", "--max-failures", "9")
	if code != cmdutil.ExitFailed {
		t.Fatalf("exit %d, want 1 (10 failures > 9): %s", code, errOut)
	}
	if !strings.Contains(errOut, "10 failed requests, budget 9") {
		t.Errorf("stderr does not say why: %q", errOut)
	}
	var got struct {
		Requests  uint64             `json:"requests"`
		OK        uint64             `json:"ok"`
		Answered  uint64             `json:"answered"` // a 502 is an answer
		Failures  map[string]uint64  `json:"failures"`
		LatencyMS map[string]float64 `json:"latency_ms"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if got.Requests != 40 || got.OK != 30 || got.Answered != 40 || got.Failures["http_502"] != 10 || len(got.Failures) != len(timeline.FailureClasses) {
		t.Errorf("summary %+v", got)
	}
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := got.LatencyMS[k]; !ok {
			t.Errorf("latency_ms has no %s", k)
		}
	}
	var n, failed int
	if err := timeline.ReadFile(rec, func(r *timeline.Record) error {
		n++
		if r.Failed() {
			failed++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 40 || failed != 10 {
		t.Errorf("record has %d requests, %d failed; want 40, 10", n, failed)
	}
	code, _, _ = clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "40", "--rate", "500", "--error-budget", "30%")
	if code != 0 {
		t.Errorf("25%% failures within a 30%% budget: exit %d", code)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"probe"},
		{"probe", "http://127.0.0.1:1/", "--error-budget", "lots"},
		{"probe", "http://127.0.0.1:1/", "--version-regex", "("},
		{"probe", "http://127.0.0.1:1/", "-H", "NoColon"},
		{"probe", "http://127.0.0.1:1/", "--output", "yaml"},
		{"probe", "http://127.0.0.1:1/", "--http", "3"},
		{"probe", "http://127.0.0.1:1/", "--rate", "fast"},
		{"probe", "http://127.0.0.1:1/", "--body-file", "/nonexistent/body"},
	} {
		code, _, errOut := clitest.Run(context.Background(), "", args...)
		if code != cmdutil.ExitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}

// A real process gets a real SIGTERM while requests are in flight: it stops
// sending, waits for them, and everything the server answered is in both
// the record and the summary.
func TestSIGTERMFlushesEverything(t *testing.T) {
	var served, blocked atomic.Int64
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) > 10 {
			blocked.Add(1)
			<-release
		}
	}))
	defer ts.Close()
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	cmd := clitest.Command(t.Context(), "probe", ts.URL, "--rate", "200", "-c", "3", "--record", rec, "--output", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); blocked.Load() < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("requests never got in flight: %s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the signal land; more sends would still be counted right
	close(release)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	var sum struct {
		Requests    int64 `json:"requests"`
		OK          int64 `json:"ok"`
		Interrupted bool  `json:"interrupted"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	lines := 0
	if err := timeline.ReadFile(rec, func(*timeline.Record) error { lines++; return nil }); err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Requests != served.Load() || sum.OK != sum.Requests || int64(lines) != sum.Requests {
		t.Errorf("server answered %d; summary %+v; record has %d lines", served.Load(), sum, lines)
	}
	if _, err := os.Stat(rec); err != nil {
		t.Error(err)
	}
}

// A GET-only run says its requests were all idempotent (a proxy may have
// retried their failures away), in text and JSON; a POST run does not, and
// its body reaches the server.
func TestIdempotentOnlyNote(t *testing.T) {
	var posts, bodies atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			if b, _ := io.ReadAll(r.Body); string(b) == "ping" {
				bodies.Add(1)
			}
		}
	}))
	defer ts.Close()
	run := func(args ...string) (string, string) {
		t.Helper()
		base := []string{"probe", ts.URL, "--requests", "20", "--rate", "500"}
		_, text, errOut := clitest.Run(context.Background(), "", append(base, args...)...)
		_, js, _ := clitest.Run(context.Background(), "", append(base, append(args, "-o", "json")...)...)
		if errOut != "" {
			t.Fatalf("%v: stderr %q", args, errOut)
		}
		return text, js
	}
	type summary struct {
		IdempotentOnly *bool             `json:"idempotent_only"`
		Methods        map[string]uint64 `json:"methods"`
	}
	decode := func(js string) summary {
		t.Helper()
		var s summary
		if err := json.Unmarshal([]byte(js), &s); err != nil || s.IdempotentOnly == nil {
			t.Fatalf("JSON %v, idempotent_only missing: %s", err, js)
		}
		return s
	}
	text, js := run()
	if !strings.Contains(text, "methods   every request was idempotent (GET 20): a proxy that retries") ||
		!strings.Contains(text, "probe with -X POST too") {
		t.Errorf("GET run's text does not say its requests were all idempotent:\n%s", text)
	}
	if s := decode(js); !*s.IdempotentOnly || s.Methods["GET"] != 20 {
		t.Errorf("GET run's JSON: %+v", s)
	}
	text, js = run("-X", "POST", "--body", "ping")
	if strings.Contains(text, "idempotent") {
		t.Errorf("POST run's text warns of idempotent requests:\n%s", text)
	}
	if s := decode(js); *s.IdempotentOnly || s.Methods["POST"] != 20 {
		t.Errorf("POST run's JSON: %+v", s)
	}
	if posts.Load() != 40 || bodies.Load() != 40 {
		t.Errorf("server got %d POSTs, %d with the body; want 40, 40", posts.Load(), bodies.Load())
	}
}
