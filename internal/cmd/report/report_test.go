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

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
)

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
	code, probeOut, errOut := clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "200", "--rate", "1000", "--record", rec, "-o", "json")
	if code != 0 {
		t.Fatalf("probe exit %d: %s", code, errOut)
	}
	page := filepath.Join(dir, "r.html")
	code, repOut, errOut := clitest.Run(context.Background(), "", "report", rec, "--html", page, "-o", "json")
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
		code, _, errOut := clitest.Run(context.Background(), "", args...)
		if code != cmdutil.ExitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want 2 and one line", args, code, errOut)
		}
	}
	_, _, errOut := clitest.Run(context.Background(), "", "report", bad, "--html", "")
	if !strings.Contains(errOut, "bad.ndjson:2") {
		t.Errorf("error does not point at file:line: %q", errOut)
	}
}

// Bad input names file and line: a truncated NDJSON line (a record cut by
// a full disk or a killed prober), and an access-log line that does not
// parse (beside good ones, in a file recognised as an access log).
func TestReportBadInputFileLine(t *testing.T) {
	dir := t.TempDir()
	trunc := filepath.Join(dir, "run.ndjson")
	os.WriteFile(trunc, []byte(`{"kind":"request","time":"2026-01-01T00:00:00Z","class":"ok","source":"probe"}`+"\n"+
		`{"kind":"request","time":"2026-01-01T00:00:01Z","cla`), 0o644)
	good := `http 2026-01-01T00:00:00.100000Z app/lb/abc 10.0.0.9:5000 10.0.2.61:1325 0.000 0.001 0.000 200 200 100 200 "GET http://lb:80/ HTTP/1.1" "probe" - - arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1 "Root=1-6a6d6c00-000000000000000000000001" "-" "-" 0 2026-01-01T00:00:00.099000Z "forward" "-" "-" "10.0.2.61:1325" "200" "-" "-"`
	log := filepath.Join(dir, "alb.log")
	os.WriteFile(log, []byte(good+"\n"+good+"\n"+"http 2026-01-01T00:00:00Z app/lb/abc oops\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", trunc, "--html", ""}, "run.ndjson:2:"},
		{[]string{"report", log, "--html", ""}, "alb.log:3:"},
	} {
		code, _, errOut := clitest.Run(context.Background(), "", c.args...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want 2 and one line naming %s", c.args, code, errOut, c.want)
		}
	}
}
