package lab_test

// The instance and ingress paths on a real control plane: the kube-proxy
// stand-ins and nginx learn the pods from the EndpointSlice controller's
// slices, the pods run on one node agent per lab node, and the evidence
// (pods, EndpointSlices, target health) is what `rollsafe probe --kube`
// records from the API.

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/timeline"
)

// kubeEvidenceAgrees holds the evidence-only attribution to min (the
// embedded lab's level for the path, TestEvidenceAgreesOnEveryTopology) and
// to no wrong verdict called certain.
func kubeEvidenceAgrees(t *testing.T, res *lab.Result, min float64) {
	t.Helper()
	a := res.Evidence.Agreement
	t.Logf("%s: evidence %v agrees on %d of %d, %d wrongly certain", res.Name, res.Evidence.Causes, a.Agree, a.Compared, a.WronglyCertain)
	if a.Compared != res.Failed() || a.WronglyCertain != 0 || a.Ratio < min {
		t.Errorf("%s: evidence agrees on %.0f%% (%d of %d compared, %d failed), %d wrongly certain; want ≥ %.0f%%, 0",
			res.Name, 100*a.Ratio, a.Agree, a.Compared, res.Failed(), a.WronglyCertain, 100*min)
	}
}

// slicesListedPods: the EndpointSlice controller listed the pods, at
// addresses the API accepts (not loopback), on the node agents' Nodes —
// what the kube-proxies and nginx were fed.
func slicesListedPods(t *testing.T, rec *testutil.Records) {
	t.Helper()
	nodes := map[string]bool{}
	n := 0
	for _, r := range rec.All() {
		if r.Source != "kube" || r.Attrs["resource"] != "endpoint" {
			continue
		}
		n++
		ip, err := netip.ParseAddr(r.Attrs["address"])
		if err != nil || ip.IsLoopback() {
			t.Fatalf("endpoint %s listed at %q", r.Object, r.Attrs["address"])
		}
		if !strings.HasPrefix(r.Attrs["node"], "rollsafe-lab-") {
			t.Fatalf("endpoint %s on node %q, not a node agent's", r.Object, r.Attrs["node"])
		}
		nodes[r.Attrs["node"]] = true
	}
	t.Logf("%d endpoint records, on nodes %v", n, nodes)
	if n == 0 {
		t.Fatal("no EndpointSlice endpoint recorded: the pods were never in a slice")
	}
}

// Classic ELB (seed 003's HTTP listener) to the nodes, kube-proxy to the
// pods: with naive settings the nodes forward new connections to exited
// pods and the ELB's pinned keep-alive connections are reset; the drain
// past the ELB's idle timeout loses nothing over 5 rollouts.
func TestKubeCLB(t *testing.T) {
	broken, rec := playKubeOn(t, "naive", "clb", 2)
	expectCauses(t, broken, nil, timeline.CausePinnedConnectionReset, timeline.CauseStaleEndpoint, timeline.CauseKeepAliveRace)
	if broken.Failed() == 0 {
		t.Fatal("naive on clb lost nothing on the control plane")
	}
	kubeEvidenceAgrees(t, broken, 0.8)
	slicesListedPods(t, rec)
	fixed, _ := playKubeOn(t, "drain-past-idle-timeout", "clb", 5)
	expectNoLoss(t, fixed)
	if fixed.Rollouts != 5 {
		t.Errorf("%d rollouts, want 5", fixed.Rollouts)
	}
}

// nginx ingress: without a preStop nginx routes to the exited pod until
// its sync lag (from the EndpointSlice change) ends and the POSTs in
// flight fail; a preStop past the lag loses nothing over 5 rollouts.
func TestKubeNginxIngress(t *testing.T) {
	needNginx(t)
	broken, rec := playKubeOn(t, "ingress-no-prestop", lab.TopologyNginxIngress, 3)
	expectCauses(t, broken, []timeline.Cause{timeline.CauseIngressStaleEndpoint})
	kubeEvidenceAgrees(t, broken, 0.9)
	slicesListedPods(t, rec)
	fixed, _ := playKubeOn(t, "ingress-prestop", lab.TopologyNginxIngress, 5)
	expectNoLoss(t, fixed)
	if r := fixed.Nginx.Retried; r["GET"]+r["POST"] != 0 {
		t.Errorf("the fix relied on nginx's retries: %v", r)
	}
}
