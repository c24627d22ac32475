package probe_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmd/root"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
)

func oneLine(t *testing.T, errOut string) {
	t.Helper()
	if strings.TrimSpace(errOut) == "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("stderr is not one line: %q", errOut)
	}
}

func answered(t *testing.T, out string) (requests, answered uint64) {
	t.Helper()
	var s struct {
		Requests uint64 `json:"requests"`
		Answered uint64 `json:"answered"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return s.Requests, s.Answered
}

// A port nobody listens on: every request is refused. The gate could not
// run, whatever the budget says: exit 3 with one line, not 0 or 1.
func TestNeverAnsweredRefusedExits3(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()
	for _, budget := range [][]string{nil, {"--max-failures", "0"}, {"--error-budget", "100%"}} {
		args := append([]string{"probe", url, "--requests", "5", "--rate", "100", "-o", "json"}, budget...)
		code, out, errOut := clitest.Run(context.Background(), "", args...)
		if code != cmdutil.ExitRuntime {
			t.Errorf("%v: exit %d, want 3: %s", budget, code, errOut)
		}
		oneLine(t, errOut)
		if !strings.Contains(errOut, url+" never answered: none of 5 requests got a response (conn_refused 5)") {
			t.Errorf("%v: stderr %q", budget, errOut)
		}
		if n, a := answered(t, out); n != 5 || a != 0 {
			t.Errorf("summary: %d requests, %d answered", n, a)
		}
	}
}

// A server that accepts and reads but never answers: every request times
// out. Same verdict.
func TestNeverAnsweredTimeoutsExits3(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(done); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				go func() { <-done; c.Close() }()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
				}
			}()
		}
	}()
	url := "http://" + ln.Addr().String() + "/"
	code, out, errOut := clitest.Run(context.Background(), "", "probe", url, "--requests", "3", "--rate", "50", "--timeout", "200ms",
		"--max-failures", "10", "-o", "json")
	if code != cmdutil.ExitRuntime || !strings.Contains(errOut, "never answered: none of 3 requests got a response (timeout 3)") {
		t.Errorf("exit %d, stderr %q; want 3 and the timeouts", code, errOut)
	}
	oneLine(t, errOut)
	if n, a := answered(t, out); n != 3 || a != 0 {
		t.Errorf("summary: %d requests, %d answered", n, a)
	}
}

// A server that answered and then died: that is a rollout dropping
// requests, the gate's business: exit 1 past the budget, 0 within it.
func TestAnsweredThenDiedIsTheGates(t *testing.T) {
	for _, c := range []struct {
		budget []string
		code   int
	}{{[]string{"--max-failures", "0"}, cmdutil.ExitFailed}, {nil, cmdutil.ExitOK}} {
		var served atomic.Int64
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
		stop := make(chan struct{})
		go func() { // dies after its 5th answer: refused from then on
			for served.Load() < 5 {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
			ts.Close()
		}()
		args := append([]string{"probe", ts.URL, "--requests", "40", "--rate", "100", "-c", "1", "-o", "json"}, c.budget...)
		code, out, errOut := clitest.Run(context.Background(), "", args...)
		close(stop)
		ts.Close()
		n, a := answered(t, out)
		if code != c.code || a < 5 || a >= n {
			t.Errorf("%v: exit %d (want %d), %d of %d answered: %s", c.budget, code, c.code, a, n, errOut)
		}
		if c.code == cmdutil.ExitFailed && !strings.Contains(errOut, "error budget exceeded") {
			t.Errorf("stderr %q does not name the budget", errOut)
		}
	}
}

// --record that cannot be created is refused before anything is sent
// (exit 2, as the help says); a record that fails while it is written
// (a full disk: /dev/full) makes the run exit 3, the summary still printed.
func TestRecordUnwritable(t *testing.T) {
	ts, served := counting(t)
	for _, path := range []string{filepath.Join(t.TempDir(), "no", "such", "dir.ndjson"), t.TempDir()} {
		code, _, errOut := clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "5", "--record", path)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, "--record "+path+": ") {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming --record and the path", path, code, errOut)
		}
		oneLine(t, errOut)
	}
	if served.Load() != 0 {
		t.Errorf("%d requests sent with an unusable --record", served.Load())
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	code, out, errOut := clitest.Run(context.Background(), "", "probe", ts.URL, "--requests", "5", "--record", "/dev/full", "-o", "json")
	if code != cmdutil.ExitRuntime || !strings.Contains(errOut, "recording /dev/full") {
		t.Errorf("exit %d, stderr %q; want 3, recording failed", code, errOut)
	}
	oneLine(t, errOut)
	if n, _ := answered(t, out); n != 5 {
		t.Errorf("summary has %d requests, want 5", n)
	}
}

// Every flag error names the flag and the value, in one line, exit 2, and
// nothing is sent.
func TestFlagErrorsNameFlagAndValue(t *testing.T) {
	ts, served := counting(t)
	u := ts.URL
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "3"}, "--http 3: want auto, 1.1 or 2"},
		{[]string{"--http", "2"}, "--http 2: needs an https URL"},
		{[]string{"-d", "-1s"}, "--duration -1s: must be ≥ 0"},
		{[]string{"--rate", "-1"}, "--rate -1: must be a finite number ≥ 0"},
		{[]string{"--rate", "NaN"}, "--rate NaN: must be a finite number ≥ 0"},
		{[]string{"--rate", "+Inf"}, "--rate +Inf: must be a finite number ≥ 0"},
		{[]string{"-c", "0"}, "--connections 0: must be at least 1"},
		{[]string{"--timeout", "0s"}, "--timeout 0s: must be positive"},
		{[]string{"--late-after", "-1ms"}, "--late-after -1ms: must be positive"},
		{[]string{"--idle-timeout", "0s"}, "--idle-timeout 0s: must be positive"},
		{[]string{"--max-failures", "-2"}, "--max-failures -2: must be ≥ 0, or -1 for no limit"},
		{[]string{"--error-budget", "lots"}, "--error-budget lots: want a share like 0.1% or 0.001"},
		{[]string{"--error-budget", "150%"}, "--error-budget 150%: want a share"},
		{[]string{"-X", "GE T"}, `--method "GE T": want an HTTP method`},
		{[]string{"--replica-header", ""}, `--replica-header "": want a header name`},
		{[]string{"-H", "NoColon"}, `--header "NoColon": want "Name: value"`},
		{[]string{"--body", "x", "--body-file", "y"}, "--body and --body-file: give one"},
		{[]string{"--body-file", "/nonexistent/body"}, "--body-file /nonexistent/body: no such file or directory"},
		{[]string{"--version-regex", "("}, `--version-regex "(": `},
		{[]string{"-o", "yaml"}, `--output "yaml": want one of text, json`},
		{[]string{"-n", "40"}, "--namespace (-n) 40: needs --kube; the number of requests is --requests"},
		{[]string{"-l", "app=web"}, "--selector app=web: needs --kube"},
		{[]string{"--context", "prod"}, "--context prod: needs --kube"},
		{[]string{"--region", "eu-west-1"}, "--region eu-west-1: needs --target-group-arn"},
		{[]string{"--poll-interval", "0s"}, "--poll-interval 0s: must be positive"},
		{[]string{"--record", "-", "-o", "json"}, "--record - and --output json both want stdout"},
		{[]string{"--requests", "-1"}, `invalid argument "-1" for "--requests" flag`},
		{[]string{"--workers", "2"}, "--workers 2: needs --kube"},
		{[]string{"--workers", "-1", "--kube"}, "--workers -1: must be ≥ 1"},
		{[]string{"--workers", "2", "--kube", "--record", "-"}, "--record -: not with --workers"},
		{[]string{"--workers", "2", "--kube", "--start-timeout", "0s"}, "--start-timeout 0s"},
		{[]string{"--workers", "2", "--kube", "--image", ""}, `--image "", --worker-command "/usr/local/bin/rollsafe": give both`},
		{[]string{"--worker-of", "2", "--worker-index", "2"}, "--worker-index 2: want 0..1"},
		{[]string{"--worker-of", "2", "--epoch", "soon"}, `--epoch "soon": want an RFC 3339 time`},
		{[]string{"--worker-of", "2", "--run-id", "xyz"}, `--run-id "xyz": want 8 hex digits`},
	} {
		code, _, errOut := clitest.Run(context.Background(), "", append([]string{"probe", u}, c.args...)...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
		oneLine(t, errOut)
	}
	if served.Load() != 0 {
		t.Errorf("%d requests sent past a bad flag", served.Load())
	}
}

// -n is the namespace in every command that has one (the kubectl plugin
// convention); probe counts requests with --requests only.
func TestShortNIsNamespaceEverywhere(t *testing.T) {
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}}, Name: "rollsafe"}
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if fl := c.Flags().ShorthandLookup("n"); fl != nil {
			seen[c.Name()] = true
			if fl.Name != "namespace" {
				t.Errorf("%s: -n is --%s, want --namespace", c.CommandPath(), fl.Name)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root.New(f))
	for _, name := range []string{"probe", "check", "soak"} {
		if !seen[name] {
			t.Errorf("%s has no -n", name)
		}
	}
	probeCmd, _, _ := root.New(f).Find([]string{"probe"})
	if fl := probeCmd.Flags().Lookup("requests"); fl == nil || fl.Shorthand != "" {
		t.Errorf("probe --requests: %+v, want no shorthand", fl)
	}
}
