package lab_test

// Every topology other than alb-ip (lab_test.go) gets a scenario pair under
// constant load: a broken one that loses requests with the causes of its
// path, and a fixed one that loses none over 5 rollouts. Durations are
// shrunk 20× (--time-scale 0.05; 40× for the NLB's long drain) to keep the
// package's time down.

import (
	"context"
	"testing"

	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/timeline"
)

// topoScale shrinks every duration 20×; a fixed scenario behind an NLB,
// whose drain outlasts 2 minutes of propagation, 40× (nlbScale).
const topoScale, nlbScale = 0.05, 0.025

// playOn plays the built-in scenario name on topology topo at scale;
// shutdown, when set, replaces how the demo API exits (--app-shutdown).
func playOn(t *testing.T, name, topo, shutdown string, rollouts int, scale float64) *lab.Result {
	t.Helper()
	ss, err := lab.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := lab.LookupTopology(topo)
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0].On(tp)
	if shutdown != "" {
		s.App.Shutdown = shutdown
	}
	res, err := lab.Run(context.Background(), s, lab.Options{TimeScale: scale, Rollouts: rollouts, Rate: 200, App: []string{demoBin}})
	if err != nil {
		t.Fatalf("%s on %s: %v", name, topo, err)
	}
	t.Logf("%s on %s [%s]: %d requests, %d failed, classes %v, causes %v, killed %d, %.1fs",
		name, topo, res.Settings, res.Requests, res.Failed(), nonZero(res.Failures), res.Causes, res.Killed, res.Seconds)
	if res.Requests < 100 || res.Rollouts != rollouts {
		t.Fatalf("%d requests, %d rollouts: the load or the rollouts did not run", res.Requests, res.Rollouts)
	}
	return res
}

func expectNoLoss(t *testing.T, res *lab.Result) {
	t.Helper()
	if res.Failed() != 0 {
		t.Errorf("%s on %s lost %d requests: %v", res.Name, res.Scenario.Topology, res.Failed(), res.Causes)
	}
}

// ALB, instance targets: without a preStop or a drain the app exits while
// the nodes still forward new connections to it (stale_endpoint) and the
// ALB's keep-alive connections pinned to it are reset (pinned).
func TestTopologyALBInstance(t *testing.T) {
	broken := playOn(t, "naive", "alb-instance", "", 2, topoScale)
	expectCauses(t, broken, []timeline.Cause{timeline.CausePinnedConnectionReset},
		timeline.CauseStaleEndpoint, timeline.CauseKeepAliveRace)
	expectNoLoss(t, playOn(t, "drain-past-idle-timeout", "alb-instance", "", 5, topoScale))
}

// The graceful drain is what sheds the pinned connections: the same
// scenario with the app exiting at once on SIGTERM loses requests on them.
func TestTopologyInstanceGracefulVersusImmediate(t *testing.T) {
	res := playOn(t, "drain-past-idle-timeout", "alb-instance", "immediate", 2, topoScale)
	expectCauses(t, res, []timeline.Cause{timeline.CausePinnedConnectionReset},
		timeline.CauseStaleEndpoint, timeline.CauseKeepAliveRace)
}

// Classic ELB (seed 003): preStop 61 s past the 30 s grace, so the pod is
// killed with requests in flight, and the CLB's keep-alive connections
// pinned through kube-proxy are reset when it dies.
func TestTopologyCLB(t *testing.T) {
	broken := playOn(t, "prestop-exceeds-grace", "clb", "", 2, topoScale)
	expectCauses(t, broken, []timeline.Cause{timeline.CauseKilledByGrace},
		// A pinned keep-alive connection the kill reset is reused in some
		// runs; graceful closes its idle connections at SIGTERM (2 s before
		// the kill), and one the CLB reuses then is the app's own close.
		timeline.CausePinnedConnectionReset, timeline.CauseKeepAliveRace)
	if broken.Killed == 0 {
		t.Error("preStop 61s > grace 30s: no pod got SIGKILL")
	}
	expectNoLoss(t, playOn(t, "drain-past-idle-timeout", "clb", "", 5, topoScale))
}

// Classic ELB with a TCP listener (no backend-protocol annotation): each
// client connection is relayed to a node, none pooled. Seed 003's 61 s
// preStop past the 30 s grace kills requests in flight; a drain past the
// ELB's 60 s idle timeout loses nothing.
func TestTopologyCLBTCP(t *testing.T) {
	broken := playOn(t, "prestop-exceeds-grace", "clb-tcp", "", 2, topoScale)
	expectCauses(t, broken, []timeline.Cause{timeline.CauseKilledByGrace},
		timeline.CausePinnedConnectionReset, timeline.CauseKeepAliveRace, timeline.CauseStaleEndpoint)
	if broken.Killed == 0 {
		t.Error("preStop 61s > grace 30s: no pod got SIGKILL")
	}
	expectNoLoss(t, playOn(t, "drain-past-idle-timeout", "clb-tcp", "", 5, topoScale))
}

// NLB, ip targets: the ALB's recommended settings (preStop 40 s, grace
// 50 s) fall short of the ~2 minutes an NLB keeps sending new connections
// to a deregistered target: once the app has exited they are refused, and
// once its pod is deleted they go unanswered.
func TestTopologyNLBIP(t *testing.T) {
	broken := playOn(t, "recommended", "nlb-ip", "", 2, topoScale)
	expectCauses(t, broken, nil, timeline.CauseDrainingTargetGone, timeline.CauseDrainingTargetExited,
		timeline.CausePinnedConnectionReset, timeline.CauseKeepAliveRace)
	if broken.Causes[timeline.CauseDrainingTargetGone]+broken.Causes[timeline.CauseDrainingTargetExited] == 0 {
		t.Errorf("no new connection reached the deregistered target: %v", broken.Causes)
	}
	expectNoLoss(t, playOn(t, "drain-past-nlb-propagation", "nlb-ip", "", 5, nlbScale))
}

// NLB, instance targets: as ALB instance, per connection.
func TestTopologyNLBInstance(t *testing.T) {
	broken := playOn(t, "naive", "nlb-instance", "", 5, topoScale)
	// Few of the prober's connections are open at once, so one run's losses
	// are a handful, on either path: pinned, or new through a stale node.
	expectCauses(t, broken, nil, timeline.CausePinnedConnectionReset, timeline.CauseStaleEndpoint, timeline.CauseKeepAliveRace)
	if broken.Failed() == 0 {
		t.Error("naive on nlb-instance lost nothing")
	}
	expectNoLoss(t, playOn(t, "drain-past-idle-timeout", "nlb-instance", "", 5, topoScale))
}
