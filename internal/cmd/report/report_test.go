package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmd/root"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Name: "rollsafe"}
	return root.Run(context.Background(), f, args), out.String(), errOut.String()
}

type numbers struct {
	Requests  uint64             `json:"requests"`
	OK        uint64             `json:"ok"`
	Failures  map[string]uint64  `json:"failures"`
	LatencyMS map[string]float64 `json:"latency_ms"`
}

// probe --record, then report: the report's numbers are the probe's.
func TestReportMatchesProbe(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "<b>pod</b>")
		if n.Add(1)%5 == 0 {
			w.WriteHeader(503)
		}
	}))
	defer ts.Close()
	dir := t.TempDir()
	rec := filepath.Join(dir, "run.ndjson")
	code, probeOut, errOut := runCLI(t, "probe", ts.URL, "-n", "200", "--rate", "1000", "--record", rec, "-o", "json")
	if code != 0 {
		t.Fatalf("probe exit %d: %s", code, errOut)
	}
	page := filepath.Join(dir, "r.html")
	code, repOut, errOut := runCLI(t, "report", rec, "--html", page, "-o", "json")
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, errOut)
	}
	var p numbers
	var rep struct {
		Runs []struct {
			Summary numbers `json:"summary"`
			Bins    []any   `json:"bins"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(probeOut), &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(repOut), &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("%v: %d runs", err, len(rep.Runs))
	}
	r := rep.Runs[0]
	if p.Requests != 200 || p.Failures["http_503"] != 40 {
		t.Errorf("probe numbers %+v", p)
	}
	pj, _ := json.Marshal(p)
	rj, _ := json.Marshal(r.Summary)
	if !bytes.Equal(pj, rj) || len(r.Bins) == 0 {
		t.Errorf("report numbers differ from probe's:\nprobe  %s\nreport %s", pj, rj)
	}
	html, err := os.ReadFile(page)
	if err != nil || !bytes.Contains(html, []byte("&lt;b&gt;pod&lt;/b&gt;")) || bytes.Contains(html, []byte("<b>pod")) {
		t.Errorf("html missing or header not escaped (%v)", err)
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte("{\"kind\":\"pod\",\"time\":\"2026-01-01T00:00:00Z\"}\nnot json\n"), 0o644)
	for _, args := range [][]string{
		{"report"},
		{"report", bad, "--html", ""},
		{"report", filepath.Join(dir, "missing.ndjson")},
		{"report", bad, "--bin", "0s"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != cmdutil.ExitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want 2 and one line", args, code, errOut)
		}
	}
	_, _, errOut := runCLI(t, "report", bad, "--html", "")
	if !strings.Contains(errOut, "bad.ndjson:2") {
		t.Errorf("error does not point at file:line: %q", errOut)
	}
}
