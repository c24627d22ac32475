// Package e2e_test runs rollsafe end to end as a user runs it on EKS, with
// only the endpoints changed: the lab serves a scenario on a real
// Kubernetes control plane (`rollsafe lab --kube --serve`), `rollsafe
// probe --kube --target-group-arn` records the evidence through the real
// client-go and aws-sdk-go-v2 against the lab's APIs, kubectl rolls the
// Deployment, and `rollsafe report` explains every failure from the probe's
// record and the ALB stand-in's access log. Every step is a real process.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/timeline"
)

var rollsafe string

func TestMain(m *testing.M) {
	testutil.RunWithBinary(m, "github.com/rollsafe/rollsafe/cmd/rollsafe", &rollsafe, nil)
}

// needControlPlane skips (fails in CI) when the control-plane binaries
// scripts/controlplane.sh builds are missing.
func needControlPlane(t *testing.T) string {
	bin := controlplane.BinDir()
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing: run scripts/controlplane.sh", filepath.Join(bin, b))
			}
			t.Skipf("%s missing: run scripts/controlplane.sh", filepath.Join(bin, b))
		}
	}
	return bin
}

// served is what `lab --serve` prints.
type served struct{ url, namespace, kubeconfig, endpoint, arn string }

// serveLab starts `rollsafe lab --kube --serve` and waits for it to say
// where it serves.
func serveLab(t *testing.T, ctx context.Context, scenario, accessLog string) (*exec.Cmd, served, *testutil.SyncBuffer) {
	cmd := exec.CommandContext(ctx, rollsafe, "lab", "--kube", "--serve", "--scenario", scenario, "--access-log", accessLog)
	var errOut testutil.SyncBuffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var s served
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(3 * time.Minute)
	for s.arn == "" || s.kubeconfig == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("lab --serve ended before serving: %s", errOut.String())
			}
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			v = strings.TrimSpace(v)
			switch k {
			case "url":
				s.url = v
			case "namespace":
				s.namespace = v
			case "kubeconfig":
				s.kubeconfig = v
			case "elbv2 endpoint":
				s.endpoint = v
			case "target group arn":
				s.arn = v
			}
		case <-deadline:
			t.Fatalf("lab --serve did not come up: %s", errOut.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return cmd, s, &errOut
}

func TestReportExplainsRolloutOnControlPlane(t *testing.T) {
	bin := needControlPlane(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	accessLog := filepath.Join(dir, "alb.log")
	lab, s, labErr := serveLab(t, ctx, "gate-only", accessLog)
	t.Logf("lab serves %s in %s (ELBv2 %s)", s.url, s.namespace, s.endpoint)

	// The probe line lab --serve prints: idle connections closed at half
	// the stand-in's idle timeout (6 s at the lab's 0.1 time scale), target
	// health polled every 100 ms (1 s).
	record := filepath.Join(dir, "run.ndjson")
	probe := exec.CommandContext(ctx, rollsafe, "probe", s.url, "--rate", "200", "--version-header", "X-Version", "--idle-timeout", "3s",
		"--kube", "--kubeconfig", s.kubeconfig, "--namespace", s.namespace, "-l", "app=jiameng-api",
		"--target-group-arn", s.arn, "--aws-endpoint", s.endpoint, "--region", "us-east-1", "--poll-interval", "100ms",
		"--record", record, "-o", "json")
	probe.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=lab", "AWS_SECRET_ACCESS_KEY=lab", "AWS_EC2_METADATA_DISABLED=true")
	var probeOut, probeErr bytes.Buffer
	probe.Stdout, probe.Stderr = &probeOut, &probeErr
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	kubectl := func(args ...string) {
		t.Helper()
		c := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", s.kubeconfig, "-n", s.namespace}, args...)...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	const rollouts = 2
	for i := 2; i < 2+rollouts; i++ {
		kubectl("set", "env", "deployment/jiameng-api", fmt.Sprintf("VERSION=v%d", i))
		kubectl("rollout", "status", "deployment/jiameng-api", "--timeout", "3m")
		time.Sleep(1500 * time.Millisecond) // P (1 s at this scale) and the terminations after the rollout
	}
	probe.Process.Signal(os.Interrupt) // Ctrl-C: the probe flushes its record and summarises
	probeExit := probe.Wait()
	lab.Process.Signal(os.Interrupt) // the ALB stand-in flushes its access log on close
	if err := lab.Wait(); err != nil {
		t.Fatalf("lab: %v\n%s", err, labErr.String())
	}
	if code := exitCode(probeExit); code != 1 && code != 0 {
		t.Fatalf("probe exit %d: %s", code, probeErr.String())
	}

	// Some time later, as with logs fetched from S3: report on the record
	// and the access log.
	rep := exec.Command(rollsafe, "report", record, accessLog, "-o", "json", "--html", filepath.Join(dir, "r.html"))
	var repOut, repErr bytes.Buffer
	rep.Stdout, rep.Stderr = &repOut, &repErr
	if err := rep.Run(); err != nil {
		t.Fatalf("report: %v\n%s", err, repErr.String())
	}
	var got struct {
		Runs []struct {
			Attribution struct {
				Headline string   `json:"headline"`
				Sources  []string `json:"sources"`
				Causes   []struct {
					Cause   timeline.Cause `json:"cause"`
					Count   uint64         `json:"count"`
					Certain uint64         `json:"certain"`
				} `json:"causes"`
				Join struct {
					FailedJoined uint64 `json:"failed_joined"`
				} `json:"join"`
				Propagation *struct {
					Targets []struct {
						Target  string  `json:"target"`
						Seconds float64 `json:"seconds"`
						Via     string  `json:"via"`
					} `json:"targets"`
					MaxSeconds float64 `json:"max_seconds"`
					Implied    struct {
						Command string `json:"command"`
					} `json:"implied"`
				} `json:"propagation"`
			} `json:"attribution"`
			Failures []struct {
				TraceID    string         `json:"trace_id"`
				Cause      timeline.Cause `json:"cause"`
				Confidence string         `json:"confidence"`
				Evidence   []struct {
					Source string `json:"source"`
				} `json:"evidence"`
			} `json:"failures"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(repOut.Bytes(), &got); err != nil || len(got.Runs) != 1 {
		t.Fatalf("report JSON: %v, %d runs\n%s", err, len(got.Runs), repOut.String())
	}
	run := got.Runs[0]
	a := run.Attribution
	t.Logf("%s; causes %+v; P %+v", a.Headline, a.Causes, a.Propagation)
	if !strings.HasPrefix(a.Headline, fmt.Sprintf("%d rollouts, ", rollouts)) {
		t.Errorf("headline %q: want it to count %d rollouts from the Deployment's revisions", a.Headline, rollouts)
	}
	if strings.Join(a.Sources, ",") != "probe,kube,elbv2,accesslog" {
		t.Errorf("sources %v, want probe,kube,elbv2,accesslog", a.Sources)
	}
	// gate-only: the app exits at once on SIGTERM while ALB nodes still
	// route to it; once the pod is deleted its IP is gone: 504s.
	if len(run.Failures) == 0 {
		t.Fatal("gate-only lost no request over 2 rollouts")
	}
	counts := map[timeline.Cause]uint64{}
	for _, f := range run.Failures {
		counts[f.Cause]++
		if f.TraceID == "" || f.Confidence == "" || len(f.Evidence) < 3 {
			t.Errorf("failure %s: cause %s confidence %q evidence %+v", f.TraceID, f.Cause, f.Confidence, f.Evidence)
		}
	}
	if counts[timeline.CauseDrainingTargetGone] == 0 || counts[timeline.CauseUnknown] != 0 {
		t.Errorf("causes %v: want draining_target_gone, and no unknown", counts)
	}
	if a.Join.FailedJoined != uint64(len(run.Failures)) {
		t.Errorf("%d of %d failures joined their access-log line", a.Join.FailedJoined, len(run.Failures))
	}
	// Two rollouts of two replicas: four drained targets, each measured
	// from the access log, none beyond the lab's P (1 s) and a poll.
	p := a.Propagation
	if p == nil || len(p.Targets) != 2*rollouts {
		t.Fatalf("propagation %+v: want %d targets", p, 2*rollouts)
	}
	for _, tp := range p.Targets {
		if tp.Via != "accesslog" || tp.Seconds < 0 || tp.Seconds > 1.2 {
			t.Errorf("target %s: %.3f s via %s", tp.Target, tp.Seconds, tp.Via)
		}
	}
	if !strings.HasPrefix(p.Implied.Command, "rollsafe check --propagation ") {
		t.Errorf("implied command %q", p.Implied.Command)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -2
}
