package soak_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/soak"
	"github.com/rollsafe/rollsafe/soak/soaktest"
	"github.com/rollsafe/rollsafe/timeline"
)

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, controlplane.TestOptions)) }

// setup starts the pod and load-balancer stand-ins on the shared control
// plane and writes a kubeconfig for a ServiceAccount holding rules.
func setup(t *testing.T, rules []rbacv1.PolicyRule) (*soaktest.Env, string) {
	t.Helper()
	cp, e := soaktest.ForTest(t, "soakcmd", 2)
	testutil.WaitOK(t, e.Backend.URL) // no failure before the first rollout
	cfg, err := cp.ServiceAccount(context.Background(), e.Namespace, "rollsafe-soak", rules)
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(kc, cfg, e.Namespace); err != nil {
		t.Fatal(err)
	}
	return e, kc
}

func args(e *soaktest.Env, kc string, extra ...string) []string {
	return append([]string{"soak", "--kubeconfig", kc, "--deployment", "web", "--url", e.Backend.URL,
		"--trigger", "env:VERSION", "--version-header", "X-Version", "--rate", "100", "--timeout", "2s",
		"--settle", "0s", "--rollout-timeout", "1m"}, extra...)
}

func TestSoakJSONAndRecord(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	rec := filepath.Join(t.TempDir(), "soak.ndjson")
	code, out, errOut := clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "3", "--output", "json", "--record", rec)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 rollout lines and a total, got:\n%s", out)
	}
	for i, l := range lines[:3] {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r["rollout"] != float64(i+1) || r["error"] != "" || r["new_version_seen_after_s"] == nil || r["requests"].(float64) == 0 {
			t.Errorf("line %d: %s", i+1, l)
		}
		if _, ok := r["failures"].(map[string]any); !ok {
			t.Errorf("line %d has no failures object: %s", i+1, l)
		}
	}
	var sum struct {
		Total soak.Total `json:"total"`
		Gate  string     `json:"gate"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &sum); err != nil || sum.Total.Clean != 3 || sum.Gate != "" {
		t.Fatalf("total: %s (%v)", lines[3], err)
	}
	marks, reqs := 0, 0
	if err := timeline.ReadFile(rec, func(r *timeline.Record) error {
		switch r.Kind {
		case timeline.KindRollout:
			marks++
		case timeline.KindRequest:
			reqs++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if marks != 9 || uint64(reqs) != sum.Total.Requests {
		t.Fatalf("record: %d rollout marks (want 9), %d requests (total %d)", marks, reqs, sum.Total.Requests)
	}
}

func TestSoakLostRequestsExit1(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	// Two pods: each new one turning Ready beside an old one loses 2.
	e.Pods.LosePerRollout.Store(2)
	code, out, errOut := clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "1")...)
	if code != cmdutil.ExitFailed || !strings.Contains(out, "4 lost (http_502 4)") || !strings.Contains(errOut, "soak failed: 4 of") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// The same loss within a generous budget passes.
	code, out, errOut = clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "1", "--error-budget", "50%")...)
	if code != 0 {
		t.Fatalf("with budget: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSoakMissingPatchExit3(t *testing.T) {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}},
		soak.Rules[1], soak.Rules[2],
	}
	e, kc := setup(t, rules)
	code, out, errOut := clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "1")...)
	if code != cmdutil.ExitRuntime || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "missing permission in namespace "+e.Namespace+": patch deployments (apps)") {
		t.Fatalf("want exit 3 and one line naming patch deployments, got %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

func TestSoakMetricsEndpointDuringRun(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The first rollout cannot complete until the test has scraped.
	e.Pods.Hold.Store(true)
	done := make(chan int, 1)
	var out, errOut string
	go func() {
		var code int
		code, out, errOut = clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "1", "--metrics-listen", addr)...)
		done <- code
	}()
	var body string
	for range 300 {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); strings.Contains(body, `rollsafe_soak_requests_total{class="ok"}`) && !strings.Contains(body, `rollsafe_soak_requests_total{class="ok"} 0`) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.Pods.Release()
	code := <-done
	if !strings.Contains(body, `rollsafe_soak_rollouts_total{result="clean"} 0`) || !strings.Contains(body, "rollsafe_soak_rollout_duration_seconds_bucket") {
		t.Fatalf("/metrics during the run:\n%s", body)
	}
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSoakStatsD(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	code, out, errOut := clitest.Run(context.Background(), "", args(e, kc, "--rollouts", "1", "--statsd", pc.LocalAddr().String())...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var all string
	buf := make([]byte, 65536)
	for !strings.Contains(all, "rollsafe.soak.rollout:1|c|") {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("statsd got %q: %v", all, err)
		}
		all += string(buf[:n])
	}
	if !strings.Contains(all, "#namespace:"+e.Namespace+",deployment:web,result:clean") {
		t.Fatalf("statsd: %q", all)
	}
}

func TestSoakUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"soak", "--url", "http://127.0.0.1:1/"}, "--deployment is required"},
		{[]string{"soak", "--deployment", "web"}, "--url is required"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--trigger", "image"}, "--trigger"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--rate", "0"}, "--rate 0"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--error-budget", "lots"}, "--error-budget"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--output", "yaml"}, "yaml"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--bogus"}, "bogus"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "-d", "-1s"}, "--duration -1s: must be ≥ 0"},
		{[]string{"soak", "--deployment", "web", "--url", "http://127.0.0.1:1/", "--settle", "-2s"}, "--settle -2s: must be ≥ 0"},
	} {
		code, _, errOut := clitest.Run(context.Background(), "", tc.args...)
		if code != cmdutil.ExitUsage || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", tc.args, code, errOut, tc.want)
		}
	}
}

func TestSoakSequencedTriggerNeedsVersionSource(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	a := args(e, kc, "--rollouts", "1", "--version-header", "")
	code, out, errOut := clitest.Run(context.Background(), "", a...)
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "--version-header or --version-regex") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSoakURLNotAnsweringExit3(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	a := args(e, kc, "--rollouts", "1", "--ready-timeout", "2s")
	a[6] = dead
	code, out, errOut := clitest.Run(context.Background(), "", a...)
	if code != cmdutil.ExitRuntime || !strings.Contains(errOut, "URL does not answer") || !strings.Contains(errOut, "conn_refused") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// Ctrl-C (the command's context cancelled) mid-rollout: the rollout is
// reported as interrupted, the record holds what was sent, exit 0 when
// nothing was lost.
func TestSoakInterruptFlushes(t *testing.T) {
	e, kc := setup(t, soak.Rules)
	e.Pods.Hold.Store(true) // the rollout will hang until interrupted
	rec := filepath.Join(t.TempDir(), "soak.ndjson")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan [3]string, 1)
	go func() {
		code, out, errOut := clitest.Run(ctx, "", args(e, kc, "--rollouts", "5", "--record", rec)...)
		done <- [3]string{string(rune('0' + code)), out, errOut}
	}()
	// Interrupt once the patch reached the apiserver.
	for range 300 {
		d, err := e.Admin.AppsV1().Deployments(e.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err == nil && d.Generation > 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	res := <-done
	if res[0] != "0" || !strings.Contains(res[1], "rollout 1 (version 1): not complete") || !strings.Contains(res[1], "(interrupted)") || !strings.Contains(res[1], "1 interrupted") {
		t.Fatalf("exit %s\n%s\n%s", res[0], res[1], res[2])
	}
	states := map[string]int{}
	reqs := 0
	if err := timeline.ReadFile(rec, func(r *timeline.Record) error {
		if r.Kind == timeline.KindRollout {
			states[r.State]++
		} else {
			reqs++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if states["started"] != 1 || states["failed"] != 1 || reqs == 0 {
		t.Fatalf("record after interrupt: marks %v, %d requests", states, reqs)
	}
}
