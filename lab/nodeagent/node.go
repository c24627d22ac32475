package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const (
	// leaseNamespace holds node heartbeats
	// (https://kubernetes.io/docs/concepts/architecture/leases/#node-heart-beats).
	leaseNamespace = corev1.NamespaceNodeLease
	// leaseDuration is the kubelet's default nodeLeaseDurationSeconds; it
	// renews at a quarter of it (the kubelet's renewInterval ratio 0.25).
	leaseDuration  = 40
	renewInterval  = leaseDuration * time.Second / 4
	hostAddress    = "127.0.0.1"
	hostName       = "localhost" // every node agent runs its pods on this host
	labelLabNode   = "rollsafe.dev/lab-node"
	kubeletVersion = "v0.0.0-rollsafe-nodeagent"
)

// node is the registered Node and its heartbeat.
type node struct {
	cs   kubernetes.Interface
	name string
	uid  types.UID
	// since is when Ready turned True, kept as its lastTransitionTime.
	since metav1.Time
	// logPort is the node's kubelet endpoint, where pods/log is served.
	logPort int32
}

// register creates the Node, or takes over one left by an earlier agent of
// the same name (clearing taints the node lifecycle controller put on it
// while nobody renewed it), then writes its status and Lease.
func register(ctx context.Context, cs kubernetes.Interface, name string, logPort int32) (*node, error) {
	n := &node{cs: cs, name: name, since: metav1.Now(), logPort: logPort}
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: runtime.GOARCH,
		labelLabNode: "true",
	}}, Status: n.status()}
	created, err := cs.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = n.takeOver(ctx, obj.Labels)
	}
	if err != nil {
		return nil, fmt.Errorf("register node %s: %w", name, err)
	}
	n.uid = created.UID
	if err := n.patchStatus(ctx, n.status()); err != nil {
		return nil, err
	}
	if err := n.renewLease(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) takeOver(ctx context.Context, labels map[string]string) (*corev1.Node, error) {
	old, err := n.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if old.Labels == nil {
		old.Labels = map[string]string{}
	}
	for k, v := range labels {
		old.Labels[k] = v
	}
	old.Spec.Taints, old.Spec.Unschedulable = nil, false
	return n.cs.CoreV1().Nodes().Update(ctx, old, metav1.UpdateOptions{})
}

// status is the whole NodeStatus the agent reports: room for any lab, one
// address, Ready with a fresh heartbeat and no pressure.
func (n *node) status() corev1.NodeStatus {
	room := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("64"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
		corev1.ResourcePods:             resource.MustParse("1000"),
	}
	return corev1.NodeStatus{
		Capacity: room, Allocatable: room,
		Conditions: n.conditions(metav1.Now()),
		// The API server dials the first address of its preferred types
		// (Hostname first by default) to reach the kubelet endpoint: the
		// host name must resolve to where the endpoint listens.
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: hostAddress},
			{Type: corev1.NodeHostName, Address: hostName},
		},
		DaemonEndpoints: n.endpoints(),
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: "linux", Architecture: runtime.GOARCH,
			KubeletVersion: kubeletVersion, ContainerRuntimeVersion: "rollsafe://host-process",
		},
	}
}

func (n *node) endpoints() corev1.NodeDaemonEndpoints {
	return corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: n.logPort}}
}

func (n *node) conditions(now metav1.Time) []corev1.NodeCondition {
	c := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: n.since}
	}
	return []corev1.NodeCondition{
		c(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "rollsafe node agent is posting ready status"),
		c(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "no pressure"),
		c(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "no pressure"),
		c(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "no pressure"),
	}
}

// patchStatus merges st into the node's status; conditions and addresses
// merge by type.
func (n *node) patchStatus(ctx context.Context, st corev1.NodeStatus) error {
	body, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = n.cs.CoreV1().Nodes().Patch(ctx, n.name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("node %s: status: %w", n.name, err)
	}
	return nil
}

// heartbeat renews the Lease and refreshes the Ready condition. Both, as a
// kubelet does: the lease is the cheap signal the node lifecycle controller
// reads, the condition's heartbeat is what people and older tools read.
func (n *node) heartbeat(ctx context.Context) error {
	if err := n.renewLease(ctx); err != nil {
		return err
	}
	// The endpoint goes along: NodeStatus always marshals daemonEndpoints
	// (a struct, so omitempty keeps it), and a zero port would send the API
	// server to the kubelet's default 10250.
	return n.patchStatus(ctx, corev1.NodeStatus{Conditions: n.conditions(metav1.Now()), DaemonEndpoints: n.endpoints()})
}

func (n *node) renewLease(ctx context.Context) error {
	leases := n.cs.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	holder, dur := n.name, int32(leaseDuration)
	l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: leaseNamespace,
				// Owned by the Node, so it goes when the Node goes.
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: n.uid}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
	case err == nil:
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &dur, &now
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: n.uid}}
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("node %s: lease: %w", n.name, err)
	}
	return nil
}

// remove deletes the Lease and the Node (only the Node we registered: a
// UID precondition keeps a later agent's node of the same name safe).
func (n *node) remove(ctx context.Context) error {
	err := n.cs.CoordinationV1().Leases(leaseNamespace).Delete(ctx, n.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s: delete lease: %w", n.name, err)
	}
	err = n.cs.CoreV1().Nodes().Delete(ctx, n.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &n.uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("node %s: delete: %w", n.name, err)
	}
	return nil
}
