package lab_test

// The lab command as a user runs it: the real rollsafe binary as a child
// process, real signals, and a scan of /proc for pods left behind.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
)

var bin string

// seed003 is check's fixture of seed 003's own manifests (a Classic ELB).
const seed003 = "../../../check/testdata/seeds/seed003-manifests.yaml"

func TestMain(m *testing.M) {
	testutil.RunWithBinary(m, "github.com/rollsafe/rollsafe/cmd/rollsafe", &bin, nil)
}

// pods lists the pids of processes running this test's binary as the demo API.
func pods() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[0] == bin && args[1] == "demo-api" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitNoPods(t *testing.T) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if len(pods()) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod processes left behind: %v", pods())
}

func waitPods(t *testing.T, n int) []int {
	t.Helper()
	for i := 0; i < 600; i++ {
		if p := pods(); len(p) >= n {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d pod processes ever appeared", n)
	return nil
}

func TestBadInputOneLineNoChildren(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n spec: [\n"), 0o644)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"--rate", "0"}, 2, "--rate > 0"},
		{[]string{"--scenario", "nope"}, 2, `unknown scenario "nope"`},
		{[]string{"--app", "/no/such/server"}, 2, "/no/such/server is not an executable file"},
		{[]string{"--app", "no-such-server-xyz"}, 2, "no-such-server-xyz not found in PATH"},
		{[]string{"--manifests", bad}, 2, bad + ":"},
		{[]string{"--manifests", filepath.Join(dir, "missing")}, 2, "missing"},
		{[]string{"--output", "yaml"}, 2, `--output "yaml"`},
		{[]string{"--topology", "elb"}, 2, `--topology: unknown topology "elb"`},
		{[]string{"--app-shutdown", "later"}, 2, `--app-shutdown "later": want graceful or immediate`},
		{[]string{"--topology", "clb", "--manifests", seed003}, 2, "--topology and --manifests cannot be combined"},
		{[]string{"--topology", "nlb-ip", "--kube", "--serve", "--scenario", "recommended"}, 2, "--kube --serve runs the alb-ip topology only, not nlb-ip"},
		{[]string{"--listen", busy.Addr().String(), "--scenario", "naive", "--report", ""}, 3, "address already in use"},
		// A file a flag names that cannot be created is bad input, as in probe.
		{[]string{"--record", "/nonexistent-dir/run.ndjson", "--report", ""}, 2, "--record /nonexistent-dir/run.ndjson: no such file or directory"},
		{[]string{"--access-log", "/nonexistent-dir/alb.log", "--report", ""}, 2, "--access-log /nonexistent-dir/alb.log: no such file or directory"},
		// A full disk stops the run: the records would have a hole.
		{[]string{"--record", "/dev/full", "--scenario", "recommended", "--rollouts", "1", "--time-scale", "0.05", "--report", ""}, 3, "no space left on device"},
		{[]string{"--access-log", "/dev/full", "--scenario", "recommended", "--rollouts", "1", "--time-scale", "0.05", "--report", ""}, 3, "no space left on device"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, append([]string{"lab"}, c.args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		msg := strings.TrimRight(stderr.String(), "\n")
		if code != c.code || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.contains) {
			t.Errorf("lab %v: exit %d, stderr %q; want exit %d and one line containing %q", c.args, code, msg, c.code, c.contains)
		}
		waitNoPods(t)
	}
}

func TestCtrlCStopsAndLeavesNoChild(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "lab.ndjson")
	cmd := exec.Command(bin, "lab", "--scenario", "recommended", "--rollouts", "20", "--report", "", "--record", rec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitPods(t, 2)
	time.Sleep(8 * time.Second) // first revision healthy, traffic flowing
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("lab did not stop within 60s of Ctrl-C")
	}
	waitNoPods(t)
	b, err := os.ReadFile(rec)
	if err != nil || !bytes.Contains(b, []byte(`"kind":"request"`)) {
		t.Fatalf("Ctrl-C lost the recorded timeline (%v); stderr %q", err, stderr.String())
	}
}

func TestPodCrashAndLabCrashLeaveNoChild(t *testing.T) {
	cmd := exec.Command(bin, "lab", "--scenario", "gate-only", "--rollouts", "20", "--report", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p := waitPods(t, 2)
	syscall.Kill(p[0], syscall.SIGKILL) // one pod crashes; the lab goes on
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("the lab died with a pod: %v", err)
	default:
	}
	waitPods(t, 1)
	cmd.Process.Signal(syscall.SIGKILL) // now the lab itself crashes
	<-done
	waitNoPods(t)
}

// lab --manifests on seed 003's manifests runs them on the topology they
// describe, a Classic ELB with instance targets through kube-proxy; an
// internal message about a stand-in's field never reaches the user.
func TestManifestsSeed003RunsOnCLB(t *testing.T) {
	cmd := exec.Command(bin, "lab", "--manifests", seed003, "--rollouts", "1", "--time-scale", "0.05", "--report", "", "--app-shutdown", "immediate")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lab --manifests %s: %v\n%s", seed003, err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "k8s-qos-dummy  clb: preStop 61s, grace 30s, draining off, app immediate") {
		t.Fatalf("seed 003 not replayed as its Classic ELB:\n%s", out)
	}
	waitNoPods(t)
}

// An NLB writes no access log: the HTML report is built from the timeline
// alone.
func TestNLBTopologyWritesReport(t *testing.T) {
	html := filepath.Join(t.TempDir(), "lab.html")
	cmd := exec.Command(bin, "lab", "--topology", "nlb-instance", "--scenario", "naive", "--rollouts", "1", "--time-scale", "0.05", "--report", html)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lab --topology nlb-instance: %v\n%s", err, stderr.String())
	}
	if st, err := os.Stat(html); err != nil || st.Size() == 0 {
		t.Fatalf("no HTML report: %v", err)
	}
	if out := stdout.String(); !strings.Contains(out, "naive     nlb-instance: ") {
		t.Fatalf("no nlb-instance row:\n%s", out)
	}
	waitNoPods(t)
}

// Behind ingress-nginx the table is followed by what nginx's access log
// says per method: the failures the client saw, GET and POST, adding up to
// the FAILED column, and the ones nginx hid by passing them on.
//
// rollsafe report explains the recording from its evidence on the ingress
// path (the lab's mark, or --target-type ingress), and not as ingress
// failures when told the targets are the pods (--target-type ip).
func TestNginxIngressPrintsMethods(t *testing.T) {
	record := filepath.Join(t.TempDir(), "run.ndjson")
	cmd := exec.Command(bin, "lab", "--topology", "nginx-ingress", "--scenario", "ingress-no-prestop", "--rollouts", "1",
		"--time-scale", "0.05", "--report", "", "--record", record)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && !strings.Contains(stdout.String(), "through nginx") {
		t.Fatalf("lab --topology nginx-ingress: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	var name, settings string
	var rollouts, requests, failed int
	var getF, postF, getR, postR int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ingress-no-prestop  ") {
			f := strings.Fields(l)
			name, settings = f[0], f[1]
			i := slices.IndexFunc(f, func(s string) bool { return s == "1" })
			if i < 0 || len(f) < i+3 {
				t.Fatalf("row %q", l)
			}
			rollouts, _ = strconv.Atoi(f[i])
			requests, _ = strconv.Atoi(f[i+1])
			failed, _ = strconv.Atoi(f[i+2])
		}
		if strings.HasPrefix(l, "ingress-no-prestop through nginx: ") {
			if _, err := fmt.Sscanf(l, "ingress-no-prestop through nginx: failed GET %d, POST %d; passed on to another pod after a failed try and answered, unseen by the client: GET %d, POST %d",
				&getF, &postF, &getR, &postR); err != nil {
				t.Fatalf("nginx line %q: %v", l, err)
			}
		}
	}
	if name == "" || settings != "nginx-ingress:" || rollouts != 1 || requests < 100 {
		t.Fatalf("no ingress-no-prestop row:\n%s", out)
	}
	if getF+postF != failed || postF == 0 || getR == 0 {
		t.Errorf("nginx: failed GET %d + POST %d, want %d in all and some POSTs failed, some GETs hidden:\n%s", getF, postF, failed, out)
	}
	waitNoPods(t)
	for _, c := range []struct {
		targetType string
		want       bool // ingress_stale_endpoint named for most failures
	}{{"", true}, {"ingress", true}, {"ip", false}} {
		args := []string{"report", record, "-o", "json", "--html", ""}
		if c.targetType != "" {
			args = append(args, "--target-type", c.targetType)
		}
		b, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("report %v: %v", args, err)
		}
		n := strings.Count(string(b), `"cause":"ingress_stale_endpoint"`)
		if got := n >= failed*8/10; got != c.want {
			t.Errorf("report --target-type %q: ingress_stale_endpoint on %d of %d failures", c.targetType, n, failed)
		}
	}
}
