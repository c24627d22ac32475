package lab

import (
	"fmt"
	"strings"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// Topology is the path from the load balancer to the pods: which load
// balancer, and whether its targets are the pods (ip) or the nodes, each
// forwarding through its kube-proxy (instance).
type Topology struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// LB is LBALB, LBCLB or LBNLB.
	LB string `json:"lb"`
	// Instance: the targets are the lab's nodes on their NodePort, never
	// the pods.
	Instance bool `json:"instance"`
	// Ingress: the targets are ingress-nginx's pods, each a real nginx
	// routing to the pods' endpoints (Scenario.Nginx); never rolled.
	Ingress bool `json:"ingress,omitempty"`
	// TCP: the listener relays each client connection to one target
	// connection and pools nothing (an NLB, a Classic ELB's TCP listener);
	// the lab runs package nlb's stand-in for it.
	TCP bool `json:"tcp,omitempty"`
}

// Load balancer kinds.
const (
	LBALB = "alb"
	LBCLB = "clb"
	LBNLB = "nlb"
)

// DefaultTopology is what the lab ran before it had any other: an ALB with
// ip targets, as the controller builds it for an Ingress with
// target-type ip.
const DefaultTopology = "alb-ip"

// Topologies lists every path the lab can replay, the default first.
func Topologies() []Topology {
	return []Topology{
		{Name: "alb-ip", LB: LBALB, Description: "ALB, ip targets: the pods are the targets (Ingress target-type ip); readiness gates apply"},
		{Name: "alb-instance", LB: LBALB, Instance: true, Description: "ALB, instance targets (the controller's default target-type): the nodes on their NodePort, kube-proxy to the pods; no readiness gates"},
		{Name: "clb", LB: LBCLB, Instance: true, Description: "Classic ELB from a Service type LoadBalancer (seed 003): HTTP listener (aws-load-balancer-backend-protocol: http), nodes on their NodePort, kube-proxy to the pods"},
		{Name: "clb-tcp", LB: LBCLB, Instance: true, TCP: true, Description: "Classic ELB with a TCP listener (the in-tree provider's default without aws-load-balancer-backend-protocol): each client connection relayed to a node's NodePort, kube-proxy to the pods"},
		{Name: "nlb-ip", LB: LBNLB, TCP: true, Description: "NLB, ip targets: TCP connections balanced to the pods; deregistration propagates in about 2 minutes"},
		{Name: "nlb-instance", LB: LBNLB, Instance: true, TCP: true, Description: "NLB, instance targets: TCP connections to the nodes' NodePort, kube-proxy to the pods"},
		{Name: TopologyNginxIngress, LB: LBNLB, Ingress: true, TCP: true, Description: "NLB (ingress-nginx's AWS manifests) to ingress-nginx's pods, real nginx routing to the pods' endpoints after its sync lag, with keep-alive and retries"},
	}
}

// LookupTopology finds a topology by name ("" is DefaultTopology).
func LookupTopology(name string) (Topology, error) {
	if name == "" {
		name = DefaultTopology
	}
	var names []string
	for _, t := range Topologies() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Topology{}, fmt.Errorf("unknown topology %q (have: %s)", name, strings.Join(names, ", "))
}

// The lab's own instance-path parameters, spec time.
const (
	// DefaultNodes is how many lab nodes run a kube-proxy on instance
	// topologies: two, so a rollout's pods land on both and a node can
	// lag behind the other.
	DefaultNodes = 2
	// NodePort is the Service's node port on every node. Kubernetes
	// allocates one from 30000-32767 by default; the lab asks for this one
	// and takes another free port (the same on every node) when it is busy.
	NodePort = 30080
	// HealthCheckNodePort is a Local Service's healthCheckNodePort.
	HealthCheckNodePort = 31080
)

// clbHealthCheckLocalPath is the path of a Local Service's health-check
// node port, which a Classic ELB checks over HTTP.
const clbHealthCheckLocalPath = "/healthz"

// clbHealthCheck is the provider's CLB health check. With Cluster it is a
// TCP check of the NodePort; the ALB stand-in checks over HTTP only, so the
// lab sends GET / through the node (passes whenever a pod answers, as the
// TCP connect through iptables DNAT does). With Local it is HTTP on the
// health-check node port, /healthz.
func clbHealthCheck(policy kubeproxy.Policy) alb.HealthCheck {
	hc := alb.HealthCheck{Path: defaults.HealthCheckPath, Interval: defaults.CLBHealthCheckInterval, Timeout: defaults.CLBHealthCheckTimeout,
		HealthyThreshold: defaults.CLBHealthyThreshold, UnhealthyThreshold: defaults.CLBUnhealthyThreshold, Matcher: defaults.HealthCheckMatcher}
	if policy == kubeproxy.PolicyLocal {
		hc.Path = clbHealthCheckLocalPath // the port is the node's, set when it runs
	}
	return hc
}

// On returns s replayed on topology t: what the path changes in the
// scenario. Instance targets have no readiness gate (the controller's
// webhook injects gates for ip targets only); a Classic ELB has its own
// health check defaults and, with connection draining off (the provider's
// default), no deregistration delay; a Local Service's instance health
// check goes to the health-check node port.
func (s Scenario) On(t Topology) Scenario {
	if s.Topology == t.Name {
		return s // built for t already: its own settings (a CLB's draining) stay
	}
	s.Topology = t.Name
	if t.Instance {
		s.ReadinessGate = false
		if s.Nodes == 0 {
			s.Nodes = DefaultNodes
		}
		if s.ProxyLag == 0 {
			s.ProxyLag = defaults.KubeProxyMinSyncPeriod
		}
		if s.Policy == "" {
			s.Policy = kubeproxy.PolicyCluster
		}
	}
	if t.Ingress {
		s = s.onIngress()
	}
	switch t.LB {
	case LBNLB:
		// Users measure about 2 minutes before a deregistered NLB target
		// stops getting new connections (nlb.Config).
		s.Propagation = defaults.NLBPropagation
		s.LBIdleTimeout = defaults.NLBTCPIdleTimeout
	case LBCLB:
		s.HealthCheck = clbHealthCheck(s.Policy)
		s.DeregistrationDelay = 0 // connection draining off (defaults.CLBConnectionDrainingEnabled)
		s.LBIdleTimeout = defaults.CLBIdleTimeout
	case LBALB:
		if t.Instance && s.Policy == kubeproxy.PolicyLocal {
			s.HealthCheck.Path = clbHealthCheckLocalPath
		}
	}
	return s
}

// onIngress: the load balancer's targets are the ingress pods, so no
// readiness gate (nothing registers the app's pods) and no deregistration
// of them; the hop's settings default to ingress-nginx's.
func (s Scenario) onIngress() Scenario {
	s.ReadinessGate = false
	if s.Nginx == nil {
		h := DefaultNginxHop()
		s.Nginx = &h
	}
	return s
}
