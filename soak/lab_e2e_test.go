package soak_test

// End to end, as a user runs it: the lab serves the demo API on a real
// control plane (node agent running real processes, ALB stand-in, AWS
// Load Balancer Controller stand-in), and soak rolls the Deployment through
// the API while probing through the ALB stand-in.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"

	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/soak"
	"github.com/rollsafe/rollsafe/timeline"
)

var demoOnce struct {
	sync.Once
	path string
	err  error
}

func demoAPI(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "soak-e2e")
		if err != nil {
			demoOnce.err = err
			return
		}
		demoOnce.path = filepath.Join(dir, "demo-api")
		if out, err := exec.Command("go", "build", "-o", demoOnce.path, "github.com/rollsafe/rollsafe/cmd/demo-api").CombinedOutput(); err != nil {
			demoOnce.err = err
			t.Logf("%s", out)
		}
	})
	if demoOnce.err != nil {
		t.Fatal(demoOnce.err)
	}
	return demoOnce.path
}

// soakLab serves scenario on the control plane and soaks it for rollouts.
func soakLab(t *testing.T, scenario string, rollouts int) *soak.Total {
	t.Helper()
	cp := controlplane.ForTest(t)
	ss, err := lab.Lookup(scenario)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan lab.Served, 1)
	labDone := make(chan error, 1)
	var access testutil.SyncBuffer
	var podRecs []timeline.Record
	var recMu sync.Mutex
	go func() {
		labDone <- lab.Serve(ctx, ss[0], lab.Options{
			TimeScale: 0.1, App: []string{demoAPI(t)}, Kube: &lab.KubeOptions{Config: cp.Config()},
			AccessLog: &access,
			Sink: func(r *timeline.Record) error {
				recMu.Lock()
				podRecs = append(podRecs, *r)
				recMu.Unlock()
				return nil
			},
		}, func(s lab.Served) { served <- s })
	}()
	// When a test fails, show the ALB's view of the failed requests and
	// the pod and target timeline: the evidence needed to tell why.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		n := 0
		for _, line := range strings.Split(access.String(), "\n") {
			if strings.Contains(line, " 502 ") || strings.Contains(line, " 504 ") {
				if n++; n <= 10 {
					t.Logf("access: %s", line)
				}
			}
		}
		recMu.Lock()
		defer recMu.Unlock()
		for _, r := range podRecs {
			t.Logf("%s %s %s %s %s", r.Time.Format("15:04:05.000"), r.Kind, r.Object, r.State, r.Reason)
		}
	})
	var where lab.Served
	select {
	case where = <-served:
	case err := <-labDone:
		t.Fatalf("lab: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatal(err)
	}
	trig, err := soak.ParseTrigger("env:VERSION")
	if err != nil {
		t.Fatal(err)
	}
	total, err := soak.Run(ctx, soak.Config{
		Client: cs, Namespace: where.Namespace, Deployment: where.Deployment, Trigger: trig,
		// Idle connections closed before the stand-in's 6 s (scaled) idle timeout.
		Probe: probe.Config{URL: where.URL + "/", Rate: 200, Connections: 16, Timeout: 10 * time.Second, VersionHeader: "X-Version",
			IdleConnTimeout: 3 * time.Second},
		Rollouts: rollouts, RolloutTimeout: 2 * time.Minute, ReadyTimeout: time.Minute, Settle: time.Second,
	})
	if err != nil {
		t.Fatalf("soak on %s: %v", scenario, err)
	}
	cancel()
	if err := <-labDone; err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Logf("%s: %d rollouts, %d clean, %d requests, %d lost %v", scenario, total.Rollouts, total.Clean, total.Requests, total.Lost, total.Failures)
	return total
}

func TestSoakOnTheLabControlPlane(t *testing.T) {
	rec := soakLab(t, "recommended", 3)
	if rec.Rollouts != 3 || rec.Clean != 3 || rec.Lost != 0 || rec.Requests < 1000 {
		t.Fatalf("recommended: %d rollouts, %d clean, %d lost of %d; want 3 clean, 0 lost", rec.Rollouts, rec.Clean, rec.Lost, rec.Requests)
	}
	naive := soakLab(t, "naive", 3)
	if naive.Lost == 0 || naive.Failures[timeline.ClassHTTP502] == 0 {
		t.Fatalf("naive: soak counted no lost request over %d rollouts", naive.Rollouts)
	}
}
