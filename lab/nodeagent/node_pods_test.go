package nodeagent

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
)

// A Deployment goes through the real deployment, ReplicaSet and scheduler
// controllers onto the agent's node; its pods are real processes answering
// on their own loopback IPs. Deleting a pod ends its process; Stop ends every process and the Node.
func TestDeploymentRunsOnTheNode(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.11.1"))
	ctx := context.Background()

	node, err := l.cs.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeCondition(node, corev1.NodeReady); got != corev1.ConditionTrue {
		t.Fatalf("node Ready = %q, want True", got)
	}
	if len(node.Status.Addresses) == 0 || node.Status.Addresses[0].Address != "127.0.0.1" {
		t.Fatalf("node addresses %+v", node.Status.Addresses)
	}
	lease, err := l.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, l.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.node || lease.Spec.RenewTime == nil {
		t.Fatalf("lease %+v", lease.Spec)
	}

	l.deployment("web", 2)
	l.waitRolledOut("web")

	pods, err := l.pods(ctx, "app=web")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 {
		t.Fatalf("%d pods, want 2", len(pods))
	}
	var ips []string
	pids := map[string]int{}
	for i := range pods {
		p := &pods[i]
		ip := netip.MustParseAddr(p.Status.PodIP)
		if !ip.IsLoopback() || p.Status.HostIP != "127.0.0.1" || p.Spec.NodeName != l.node {
			t.Fatalf("pod %s: podIP %s hostIP %s node %s", p.Name, p.Status.PodIP, p.Status.HostIP, p.Spec.NodeName)
		}
		if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionTrue ||
			condition(p, corev1.ContainersReady) != corev1.ConditionTrue || p.Status.StartTime == nil {
			t.Fatalf("pod %s: phase %s conditions %+v", p.Name, p.Status.Phase, p.Status.Conditions)
		}
		cs := p.Status.ContainerStatuses[0]
		if !cs.Ready || cs.State.Running == nil || cs.Started == nil || !*cs.Started {
			t.Fatalf("pod %s: container status %+v", p.Name, cs)
		}
		pids[p.Name] = pid(t, p)
		if kubelettest.ProcessGone(pids[p.Name]) {
			t.Fatalf("pod %s: process %d is not running", p.Name, pids[p.Name])
		}
		// The real process answers on the pod IP with its own name.
		url := "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(l.port)) + "/"
		if got := get(t, url); got != p.Name {
			t.Fatalf("GET %s answered %q, want %q", url, got, p.Name)
		}
		ips = append(ips, p.Status.PodIP)
	}
	if ips[0] == ips[1] {
		t.Fatalf("both pods got %s", ips[0])
	}

	// Deleting a pod ends its process and its object; the ReplicaSet
	// replaces it.
	victim := pods[0]
	l.deletePod(victim.Name, metav1.DeleteOptions{})
	if !kubelettest.ProcessGone(pids[victim.Name]) {
		t.Fatalf("pod %s deleted but process %d still runs", victim.Name, pids[victim.Name])
	}
	pods = l.waitReadyPods("app=web", 2)
	for i := range pods {
		pids[pods[i].Name] = pid(t, &pods[i])
	}

	if w := l.sink.warnings(); len(w) > 0 {
		t.Fatalf("agent warnings: %v", w)
	}

	// Stop: no process, no Node, no Lease.
	l.agent.Stop()
	for name, p := range pids {
		if !kubelettest.ProcessGone(p) {
			t.Errorf("after Stop, pod %s's process %d still runs", name, p)
		}
	}
	if _, err := l.cs.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Stop, node %s: err %v, want NotFound", l.node, err)
	}
	if _, err := l.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, l.node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Stop, lease %s: err %v, want NotFound", l.node, err)
	}
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}
