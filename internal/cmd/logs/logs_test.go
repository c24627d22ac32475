package logs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
	"github.com/rollsafe/rollsafe/logs"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// seedLine is seed 000's line: a 504 from the draining target 10.0.2.61:1325.
const seedLine = `h2 2023-01-07T09:22:52.872365Z app/k8s-apidev-95472999b0/xxxxxxxxxx 202.102.17.226:24502 10.0.2.61:1325 -1 -1 -1 504 - 49 202 "GET https://example-api.cn:443/prefix-jiameng-api/ HTTP/2.0" "curl/7.79.1" ECDHE-RSA-XXXX-GCM-SHA256 TLSv1.2 arn:aws-cn:elasticloadbalancing:cn-northwest-1:xxxxxxx:targetgroup/k8s-dev-jiamenga-edb70a94b9/081fxxxxxxxx "Root=1-63b939e2-312611fa7a64f07e63d24099" "exxample-api.cn" "arn:aws-cn:acm:cn-northwest-1:xxxxxxx:certificate/e38c0d37-5c2f-4988-81c0-xxxxxxxx" 1 2023-01-07T09:22:42.870000Z "forward" "-" "-" "10.0.2.61:1325" "-" "-" "-"`

// okLine is a 200 from a healthy target in the same minute.
func okLine(target string, sec int) string {
	e, err := accesslog.Parse([]byte(seedLine))
	if err != nil {
		panic(err)
	}
	e.Target, e.TargetPortList = []byte(target), []byte(target)
	e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = 0, 3*time.Millisecond, 0
	e.ELBStatusCode, e.TargetStatusCode = 200, 200
	e.RequestCreationTime = time.Date(2023, 1, 7, 9, 22, sec, 0, time.UTC)
	e.Time = e.RequestCreationTime.Add(3 * time.Millisecond)
	e.TraceID = fmt.Appendf(nil, "Root=1-63b939e2-%024d", sec)
	return e.String()
}

// targetsTimeline is what the elbv2 source recorded around seed 000's 504:
// 10.0.2.61 was draining from 09:22:30, 10.0.2.134 healthy.
func targetsTimeline(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "targets.ndjson")
	w, err := timeline.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return time.Date(2023, 1, 7, 9, 22, s, 0, time.UTC) }
	for _, r := range []timeline.Record{
		{Kind: timeline.KindTarget, Time: at(0), Source: "elbv2", Object: "10.0.2.61:1325", State: "healthy"},
		{Kind: timeline.KindTarget, Time: at(5), Source: "elbv2", Object: "10.0.2.134:1325", State: "healthy"},
		{Kind: timeline.KindTarget, Time: at(30), Source: "elbv2", Object: "10.0.2.61:1325", State: "draining", Reason: "Target.DeregistrationInProgress"},
	} {
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// squash collapses runs of spaces, so assertions do not depend on column widths.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// run is `rollsafe logs args...`.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	return clitest.Run(t.Context(), "", append([]string{"logs"}, args...)...)
}

func writeLog(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, "access.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSeedFailureOnDrainingTarget(t *testing.T) {
	dir := t.TempDir()
	log := writeLog(t, dir, okLine("10.0.2.134:1325", 40), seedLine, okLine("10.0.2.61:1325", 10))
	targets := targetsTimeline(t, dir)

	code, out, errOut := run(t, "--targets", targets, log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out = squash(out)
	for _, want := range []string{
		"requests 3, failed 1 (33.33%)",
		"10.0.2.61:1325 2 1 50.00%",
		"1 failures on draining targets",
		"2023-01-07T09:22:42.870Z 10.0.2.61:1325 504 - Root=1-63b939e2-312611fa7a64f07e63d24099 " + log + ":2",
		"2023-01-07T09:22Z 3 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "--targets", targets, "--output", "json", log)
	if code != 0 {
		t.Fatalf("json exit %d", code)
	}
	var res logs.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if res.Requests != 3 || res.Failures != 1 || res.Draining == nil || len(res.Draining.Failures) != 1 {
		t.Fatalf("json result: %+v", res)
	}
	f := res.Draining.Failures[0]
	if f.Target != "10.0.2.61:1325" || f.ELBStatus != 504 || f.TargetState != "draining" ||
		f.TargetReason != "Target.DeregistrationInProgress" || f.Pos != log+":2" {
		t.Errorf("draining failure %+v", f)
	}
}

func TestNotDrainingIsNotListed(t *testing.T) {
	// The same 504, but the timeline says the target turned draining only
	// after the request was received: not a draining-target failure.
	dir := t.TempDir()
	path := filepath.Join(dir, "late.ndjson")
	os.WriteFile(path, []byte(`{"kind":"target","time":"2023-01-07T09:22:50Z","object":"10.0.2.61:1325","state":"draining"}`+"\n"), 0o644)
	code, out, _ := run(t, "--targets", path, writeLog(t, dir, seedLine))
	if code != 0 || !strings.Contains(out, "0 failures on draining targets") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestCorruptLineReportedAndRestSummarised(t *testing.T) {
	dir := t.TempDir()
	broken := strings.Replace(seedLine, `"curl/7.79.1"`, `"curl/7.79.1`, 1)
	log := writeLog(t, dir, okLine("10.0.2.134:1325", 1), broken, okLine("10.0.2.134:1325", 2))
	code, out, errOut := run(t, log)
	if code != cmdutil.ExitUsage {
		t.Errorf("exit %d, want %d", code, cmdutil.ExitUsage)
	}
	if !strings.Contains(errOut, log+":2: field") || !strings.Contains(errOut, "1 bad lines") {
		t.Errorf("stderr lacks file:line of the bad line:\n%s", errOut)
	}
	if !strings.Contains(out, "requests 2, failed 0") || !strings.Contains(out, "bad input: 1 lines") {
		t.Errorf("summary of the good lines missing:\n%s", out)
	}
}

func TestRecordWritesTimelineRequests(t *testing.T) {
	dir := t.TempDir()
	log := writeLog(t, dir, seedLine, okLine("10.0.2.134:1325", 7))
	recPath := filepath.Join(dir, "requests.ndjson")
	if code, _, errOut := run(t, "--record", recPath, log); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	byTrace := map[string]timeline.Record{}
	err := timeline.ReadFile(recPath, func(r *timeline.Record) error {
		byTrace[r.TraceID] = *r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := byTrace["Root=1-63b939e2-312611fa7a64f07e63d24099"]
	if !ok || len(byTrace) != 2 {
		t.Fatalf("records by trace: %v", byTrace)
	}
	if r.Kind != timeline.KindRequest || r.Source != "accesslog" || r.Status != 504 || r.Class != timeline.ClassHTTP504 ||
		r.Attrs["target"] != "10.0.2.61:1325" || r.Latency != 10002365*time.Microsecond ||
		!r.Time.Equal(time.Date(2023, 1, 7, 9, 22, 42, 870000000, time.UTC)) {
		t.Errorf("seed record %+v", r)
	}
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte(`{"kind":"target","time":"2023-01-07T09:22:50Z","object":"a:1"}`+"\n{oops\n"), 0o644)
	log := writeLog(t, dir, seedLine)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--targets", bad, log}, bad + ":2:"},
		{[]string{filepath.Join(dir, "missing.log")}, "missing.log: no such file"},
		{[]string{"--output", "xml", log}, `--output "xml"`},
		{[]string{"--workers", "-1", log}, "--workers -1"},
	} {
		code, _, errOut := run(t, c.args...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
}

func TestMain(m *testing.M) {
	clitest.ActAsChild() // TestInterruptFlushes's process
	os.Exit(m.Run())
}

// TestInterruptFlushes runs `rollsafe logs` as a real process reading a
// pipe that never closes, sends it a real SIGINT, and checks that it prints
// the summary of what it read and that --record holds exactly those requests.
func TestInterruptFlushes(t *testing.T) {
	dir := t.TempDir()
	recPath := filepath.Join(dir, "rec.ndjson")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := clitest.Command(ctx, "logs", "--output", "json", "--record", recPath, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fmt.Fprintln(stdin, okLine("10.0.2.134:1325", i%60))
	}
	// The record file is created after the signal handler is installed:
	// once it exists, SIGINT reaches the handler, not the default action.
	for {
		if _, err := os.Stat(recPath); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("record file never created")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	stdin.Close()
	if code := cmd.ProcessState.ExitCode(); code != cmdutil.ExitRuntime {
		t.Fatalf("exit %d (%v), want %d; stderr: %s", code, err, cmdutil.ExitRuntime, errOut.String())
	}
	if !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("stderr: %s", errOut.String())
	}
	var res logs.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	n := 0
	if err := timeline.ReadFile(recPath, func(*timeline.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || int64(n) != res.Requests {
		t.Errorf("interrupted=%v, summary has %d requests, record file %d", res.Interrupted, res.Requests, n)
	}
}
