package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/timeline"
)

func TestReplayUserManifests(t *testing.T) {
	s, err := lab.FromManifests("testdata/shop.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "cart" || s.Replicas != 3 || !s.ReadinessGate || s.PreStop != 25*time.Second ||
		s.Grace != 45*time.Second || s.DeregistrationDelay != 20*time.Second ||
		s.HealthCheck.Path != "/readyz" || s.HealthCheck.Interval != 10*time.Second ||
		s.App.ShutdownTimeout != 5*time.Second || s.MaxUnavailable.IntValue() != 0 || s.MaxSurge.IntValue() != 1 {
		t.Fatalf("scenario from the manifests: %+v", s)
	}
	res, err := lab.Run(context.Background(), s, lab.Options{TimeScale: 0.1, Rollouts: 1, Rate: 200, App: []string{demoBin}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replayed %s: %d requests, %d failed %v", s.Name, res.Requests, res.Failed(), res.Causes)
	if res.Failed() != 0 || res.Requests < 500 {
		t.Fatalf("the user's safe settings lost %d of %d requests: %v", res.Failed(), res.Requests, res.Causes)
	}
}

// lab --manifests on a kustomize overlay replays the rendered overlay: its
// namespace and replicas, the base's timings (not pinned here: the kit's
// numbers are tuned elsewhere; the scenario must just carry them).
func TestReplayKustomizeOverlayLoads(t *testing.T) {
	for _, c := range []struct {
		overlay  string
		replicas int32
	}{{"dev", 2}, {"prod", 3}} {
		s, err := lab.FromManifests("../deploy/k8s/overlays/"+c.overlay, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.overlay, err)
		}
		if s.Name != "jiameng-api" || s.Replicas != c.replicas || !s.ReadinessGate || s.PreStop <= 0 ||
			s.Grace <= s.PreStop || s.DeregistrationDelay <= 0 || s.HealthCheck.Path != "/readyz" || s.Template == nil ||
			s.Description != "replayed from Deployment/jiameng-api-"+c.overlay+"/jiameng-api" {
			t.Fatalf("scenario from the %s overlay: %+v", c.overlay, s)
		}
	}
}

func TestReplayBadManifests(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"testdata/missing.yaml", "testdata/missing.yaml: no such file or directory"},
		{"../deploy/cicd", "../deploy/cicd: nothing to judge"},
		{"../deploy/k8s", "2 Deployments found"},
	} {
		if _, err := lab.FromManifests(c.path, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromManifests(%s) = %v, want an error containing %q", c.path, err, c.want)
		}
	}
}

// Seed 003's own manifests (check's fixture): an in-tree Classic ELB with an
// HTTP backend in front of a NodePort Service, preStop 61 s under the
// default 30 s grace. Its app, a Go program without a SIGTERM handler,
// exits at once: the CLB's keep-alive connections pinned through kube-proxy
// to each old pod are reset when it goes.
//
// check's fixes give the app a drain with Connection: close for 65 s, past
// the Classic ELB's 60 s idle timeout (kube-proxy-keepalive), inside a
// 157 s grace period: a graceful app then sheds every pinned connection
// before it exits, and nothing is lost.
func TestReplaySeed003(t *testing.T) {
	broken := replay(t, "../check/testdata/seeds/seed003-manifests.yaml", "immediate", 3, nil)
	if broken.Scenario.Topology != "clb" || broken.Scenario.PreStop != 61*time.Second || broken.Scenario.Grace != 30*time.Second ||
		broken.Scenario.DeregistrationDelay != 0 || broken.Scenario.Replicas != 3 {
		t.Fatalf("seed 003 replayed as %s", broken.Settings)
	}
	expectCauses(t, broken, []timeline.Cause{timeline.CausePinnedConnectionReset},
		timeline.CauseStaleEndpoint, timeline.CauseKilledByGrace, timeline.CauseKeepAliveRace)

	fixed := replay(t, "../check/testdata/seeds/seed003-manifests-fixed.yaml", "graceful", 5, nil)
	if fixed.Scenario.App.DrainDelay != 65*time.Second || fixed.Scenario.Grace != 157*time.Second {
		t.Fatalf("the fixed copy replayed as %s", fixed.Settings)
	}
	if fixed.Failed() != 0 {
		t.Errorf("seed 003 with check's fixes lost %d: %v", fixed.Failed(), fixed.Causes)
	}
}

// replay plays manifests at path with the demo API exiting as shutdown,
// after change (if any) to the scenario they give.
func replay(t *testing.T, path, shutdown string, rollouts int, change func(*lab.Scenario)) *lab.Result {
	t.Helper()
	s, err := lab.FromManifests(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.App.Shutdown = shutdown
	if change != nil {
		change(&s)
	}
	res, err := lab.Run(context.Background(), s, lab.Options{TimeScale: 0.05, Rollouts: rollouts, Rate: 200, App: []string{demoBin}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s [%s]: %d requests, %d failed %v, causes %v, killed %d", path, res.Settings, res.Requests, res.Failed(),
		nonZero(res.Failures), res.Causes, res.Killed)
	if res.Requests < 500 || res.Rollouts != rollouts {
		t.Fatalf("%d requests, %d rollouts: the load or the rollouts did not run", res.Requests, res.Rollouts)
	}
	return res
}

// A Classic ELB Service without aws-load-balancer-backend-protocol gets the
// provider's TCP listener: seed 003's manifests without that annotation
// replay on clb-tcp, with them on clb (TestReplaySeed003).
func TestReplayCLBTCPListener(t *testing.T) {
	data, err := os.ReadFile("../check/testdata/seeds/seed003-manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const bp = "    service.beta.kubernetes.io/aws-load-balancer-backend-protocol: http\n"
	if !strings.Contains(string(data), bp) {
		t.Fatal("the fixture lost its backend-protocol annotation")
	}
	path := filepath.Join(t.TempDir(), "tcp.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), bp, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := lab.FromManifests(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Topology != "clb-tcp" || s.PreStop != 61*time.Second || s.DeregistrationDelay != 0 {
		t.Errorf("replayed as %s: %s", s.Topology, s.KeySettings())
	}
}
