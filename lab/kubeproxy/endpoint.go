package kubeproxy

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Endpoint is one endpoint of an EndpointSlice, with the conditions of
// KEP-1672 (GA 1.26). For a pod, Ready is Serving and not Terminating: the
// EndpointSlice controller keeps Ready false for a terminating pod so older
// consumers never use it, and Serving carries its readiness on.
type Endpoint struct {
	Addr        netip.AddrPort // pod IP and target port
	Node        string         // the node the pod runs on (nodeName)
	Ready       bool
	Serving     bool
	Terminating bool
}

// FromPod is the endpoint the EndpointSlice controller publishes for pod on
// port, as k8s.io/endpointslice does it (podToEndpoint, and
// ShouldPodBeInEndpoints with terminating pods included): none for a pod
// without an IP or in a terminal phase (Succeeded, Failed); Serving is the
// pod's Ready condition, Terminating a deletion timestamp, Ready Serving
// and not Terminating (for a Service without publishNotReadyAddresses).
func FromPod(pod *corev1.Pod, port uint16) (Endpoint, bool) {
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return Endpoint{}, false
	}
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	return Endpoint{
		Addr: netip.AddrPortFrom(ip, port), Node: pod.Spec.NodeName,
		Ready: serving && !terminating, Serving: serving, Terminating: terminating,
	}, true
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (e Endpoint) servingTerminating() bool { return e.Serving && e.Terminating }

// Verdict is what a node does with a new connection to its NodePort.
type Verdict string

const (
	// Forward: the node has a usable endpoint and DNATs to one of them.
	Forward Verdict = "forward"
	// Drop: the Service has usable endpoints, none on this node, and the
	// policy is Local: the connection attempt goes unanswered.
	Drop Verdict = "drop"
	// Reject: the Service has no usable endpoint anywhere: the connection
	// is refused.
	Reject Verdict = "reject"
)

// view is what one node has learned: the endpoints it may forward to and
// what it does with a new connection. It is immutable once built.
type view struct {
	all        []Endpoint
	usable     []Endpoint
	verdict    Verdict
	localReady int // distinct local Ready pod IPs: the health check's count
}

// newView applies kube-proxy's endpoint choice for node under policy.
func newView(eps []Endpoint, policy Policy, node string) *view {
	v := &view{all: slices.Clone(eps)}
	scope := v.all
	if policy == PolicyLocal {
		scope = onNode(v.all, node)
	}
	v.usable = filter(scope, func(e Endpoint) bool { return e.Ready })
	if len(v.usable) == 0 {
		v.usable = filter(scope, Endpoint.servingTerminating)
	}
	switch {
	case len(v.usable) > 0:
		v.verdict = Forward
	case slices.ContainsFunc(v.all, func(e Endpoint) bool { return e.Ready || e.servingTerminating() }):
		v.verdict = Drop
	default:
		v.verdict = Reject
	}
	v.localReady = countIPs(filter(onNode(v.all, node), func(e Endpoint) bool { return e.Ready }))
	return v
}

func onNode(eps []Endpoint, node string) []Endpoint {
	return filter(eps, func(e Endpoint) bool { return e.Node == node })
}

func filter(eps []Endpoint, keep func(Endpoint) bool) []Endpoint {
	var out []Endpoint
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// countIPs counts distinct pod IPs: kube-proxy counts a pod serving two
// ports of a Service once.
func countIPs(eps []Endpoint) int {
	seen := map[netip.Addr]bool{}
	for _, e := range eps {
		seen[e.Addr.Addr()] = true
	}
	return len(seen)
}
