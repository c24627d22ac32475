package nodeagent

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The status patch carries only the kubelet's conditions, and null for an
// empty reason so a stale one does not survive the merge.
func TestStatusPatchOwnsOnlyKubeletConditions(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.1.1", Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"},
		{Type: gate, Status: corev1.ConditionFalse},
	}}}
	body, err := statusPatch(p)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status struct {
			Conditions []map[string]any `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 2 {
		t.Fatalf("conditions %v: want Ready and ContainersReady only", got.Status.Conditions)
	}
	ready := got.Status.Conditions[0]
	if r, present := ready["reason"]; !present || r != nil {
		t.Fatalf("Ready reason %v (present %v), want explicit null", r, present)
	}
	if got.Status.Conditions[1]["reason"] != "ContainersNotReady" {
		t.Fatalf("ContainersReady %v", got.Status.Conditions[1])
	}
}

func TestGateChanges(t *testing.T) {
	api := &corev1.Pod{Spec: corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: gate}, {ConditionType: "other/gate"}}}}
	running := api.DeepCopy()
	if c := gateChanges(api, running); len(c) != 0 {
		t.Fatalf("both unset: changes %v", c)
	}
	api.Status.Conditions = []corev1.PodCondition{{Type: gate, Status: corev1.ConditionTrue}, {Type: "other/gate", Status: corev1.ConditionFalse}}
	c := gateChanges(api, running)
	if len(c) != 1 || c[gate] != corev1.ConditionTrue {
		t.Fatalf("changes %v, want only %s True (missing counts as False)", c, gate)
	}
}

// The node renews its Lease and its Ready heartbeat while it runs; a
// liveness wait (the renew interval is 10 s), not a speed assertion.
func TestNodeHeartbeat(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.17.1"))
	ctx := context.Background()
	lease, err := l.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, l.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := lease.Spec.RenewTime.Time
	if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].Kind != "Node" {
		t.Fatalf("lease owners %+v, want the Node", lease.OwnerReferences)
	}
	var heartbeat time.Time
	l.waitFor("lease renewed and Ready heartbeat refreshed", func(ctx context.Context) (bool, error) {
		lease, err := l.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n, err := l.cs.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				heartbeat = c.LastHeartbeatTime.Time
			}
		}
		return lease.Spec.RenewTime.After(first) && heartbeat.After(first.Truncate(time.Second)), nil
	})
	n, err := l.cs.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeCondition(n, corev1.NodeReady) != corev1.ConditionTrue {
		t.Fatalf("node conditions %+v", n.Status.Conditions)
	}
	if n.Status.DaemonEndpoints.KubeletEndpoint.Port != l.agent.logs.port() {
		t.Errorf("after a heartbeat the kubelet endpoint is port %d, want the log server's %d", n.Status.DaemonEndpoints.KubeletEndpoint.Port, l.agent.logs.port())
	}
	for _, taint := range n.Spec.Taints {
		t.Errorf("node tainted %v", taint)
	}
}
