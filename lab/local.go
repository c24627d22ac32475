package lab

import (
	"time"

	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// The Local pair: externalTrafficPolicy Local on the Classic ELB. A node
// forwards only to its own pods; when its last ready pod terminates it
// keeps forwarding to that pod while it still serves (KEP-1669), and its
// health-check node port fails at once, but the ELB takes the node out
// only after its health check's unhealthy threshold × interval (6 × 10 s).
// Three nodes for two replicas, so a node that loses its last pod gets no
// replacement in the same rollout, as on a cluster with more nodes than
// replicas.
const (
	localNodes = 3
	// localShortPreStop ends well inside the ELB's 60 s detection.
	localShortPreStop = 20 * time.Second
	// localPreStop is what `rollsafe check --recommend` asks of this path:
	// the endpoint update (its controller-lag figure, 5 s; the lab hands
	// pods to kube-proxy at once) + kube-proxy's lag (1 s) + the detection
	// (60 s) + its 2 s margin.
	localPreStop = 68 * time.Second
)

// clbLocal builds the pair from drain-past-idle-timeout's app, which sheds
// the connections kube-proxy keeps pinned (kube-proxy-keepalive), so that
// what is left to lose is the Local window alone.
func clbLocal(drain Scenario) []Scenario {
	clb, _ := LookupTopology("clb")
	s := drain
	s.Policy, s.Nodes = kubeproxy.PolicyLocal, localNodes
	s = s.On(clb)
	// The grace makes room for the preStop, the drain and the shutdown.
	grace := func(preStop time.Duration) time.Duration {
		return preStop + drain.App.DrainDelay + drain.App.ShutdownTimeout + 10*time.Second
	}

	short := s
	short.Name = "clb-local-prestop-short"
	short.Description = "externalTrafficPolicy Local on a Classic ELB, 3 nodes for 2 replicas, preStop 20s, shorter than the ELB's 60s health-check detection, then the graceful app's 65s drain"
	short.PreStop = localShortPreStop
	short.Grace = grace(short.PreStop)

	covered := s
	covered.Name = "clb-local-prestop"
	covered.Description = "clb-local-prestop-short with preStop 68s (check's fix), past kube-proxy's lag + the ELB's 60s health-check detection"
	covered.PreStop = localPreStop
	covered.Grace = grace(covered.PreStop)
	return []Scenario{short, covered}
}
