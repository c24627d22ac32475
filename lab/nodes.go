package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// labNodes are the lab's nodes on instance topologies: one kube-proxy per
// node on 127.0.S.N (S this run's node subnet), the same NodePort on each. The load balancer registers
// the nodes, never the pods, and connects through them (DialContext), so a
// connection reaches the pod iptables DNAT would pick.
type labNodes struct {
	nodes  kubeproxy.Nodes
	byAddr map[string]*kubeproxy.Node
	// reach holds the pod IPs that left the network: a node's connect to
	// one goes unanswered, as on AWS.
	reach   alb.Reachability
	timeout time.Duration // the load balancer's connect timeout, real time

	// mu guards nodes and byAddr (a node leaves or joins while the load
	// balancer dials: scalein.go), and the placement below.
	mu     sync.Mutex
	nodeOf map[string]string // pod name -> the node it was placed on
	placed int
	last   []kubeproxy.Endpoint    // the last snapshot, for a node that joins
	count  int                     // nodes started, for the next one's address
	gone   map[string]bool         // NodePorts of the nodes that left
	subnet int                     // S of 127.0.S.N
	lock   net.Listener            // holds the subnet for this run
	port   int                     // the NodePort every node listens on
	slot   map[*kubeproxy.Node]int // each node's place in the lag order (1-based)
}

// Node subnets: a run's nodes are 127.0.S.N with S in [firstSubnet,
// firstSubnet+subnets). A node that refuses connections (no endpoint) has
// no listener on its NodePort, so two lab runs on one machine (tests run
// packages in parallel) sharing node addresses could take each other's
// port; each run therefore holds a subnet of its own. The pods' addresses
// are 127.b.x.y with b ≥ 1 (lab/cluster's ipam), the ingress pods'
// 127.0.3.N.
const (
	firstSubnet = 100
	subnets     = 100
	// subnetLockPort is the port of the listener on 127.0.S.254 that
	// holds subnet S: a listening socket no other process can bind.
	subnetLockPort = 30079
)

// nodeAddr is lab node i's address (1-based): 127.0.S.i.
func (ln *labNodes) nodeAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", ln.subnet, i) }

// takeSubnet holds the first free node subnet for this run.
func (ln *labNodes) takeSubnet() error {
	var err error
	for s := firstSubnet; s < firstSubnet+subnets; s++ {
		var l net.Listener
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.%d.254:%d", s, subnetLockPort)); err == nil {
			ln.subnet, ln.lock = s, l
			return nil
		}
	}
	return fmt.Errorf("no free node subnet in 127.0.%d-%d.0/24: %w", firstSubnet, firstSubnet+subnets-1, err)
}

func nodeName(i int) string { return fmt.Sprintf("lab-node-%d", i) }

// startNodes starts s.Nodes kube-proxies on NodePort, or on another port
// free on every node when another lab holds it.
func startNodes(r *run) (*labNodes, error) {
	ln := &labNodes{byAddr: map[string]*kubeproxy.Node{}, nodeOf: map[string]string{}, gone: map[string]bool{},
		slot:    map[*kubeproxy.Node]int{},
		timeout: r.scale.Of(defaults.ConnectTimeout)}
	if err := ln.takeSubnet(); err != nil {
		return nil, fmt.Errorf("kube-proxy stand-in: %w", err)
	}
	var err error
	for _, port := range []int{NodePort, 0, 0, 0} {
		if err = ln.listen(r, port); err == nil {
			return ln, nil
		}
	}
	ln.lock.Close()
	return nil, fmt.Errorf("kube-proxy stand-in: %w", err)
}

// listen starts every node on port (0: a free port on the first node, the
// same on the others); on failure it closes what it started.
func (ln *labNodes) listen(r *run, port int) error {
	hcPort := 0
	if port == NodePort {
		hcPort = HealthCheckNodePort
	}
	for i := 1; i <= r.s.Nodes; i++ {
		n, err := ln.start(r, i, i, port, hcPort)
		if err != nil {
			ln.closeNodes()
			return err
		}
		ln.nodes = append(ln.nodes, n)
		ln.byAddr[n.Addr()] = n
		if i == 1 {
			_, p, _ := net.SplitHostPort(n.Addr())
			port, _ = strconv.Atoi(p)
			if hc := n.HealthCheckAddr(); hc != "" {
				_, p, _ = net.SplitHostPort(hc)
				hcPort, _ = strconv.Atoi(p)
			}
		}
	}
	ln.port = port // a node that joins later listens on it too
	return nil
}

// start starts lab node i (its address) in slot (1-based, its kube-proxy
// lag) on port, hcPort.
func (ln *labNodes) start(r *run, i, slot, port, hcPort int) (*kubeproxy.Node, error) {
	cfg := kubeproxy.DefaultConfig(nodeName(i), net.JoinHostPort(ln.nodeAddr(i), strconv.Itoa(port)))
	cfg.Policy = r.s.Policy
	if cfg.Policy == kubeproxy.PolicyLocal {
		cfg.HealthCheckListen = net.JoinHostPort(ln.nodeAddr(i), strconv.Itoa(hcPort))
	}
	// Nodes learn one after another, the last after exactly ProxyLag.
	cfg.Lag = r.scale.Of(r.s.ProxyLag) * time.Duration(slot) / time.Duration(r.s.Nodes)
	cfg.Namespace, cfg.Service, cfg.Scenario = namespace, deploymentName, r.s.Name
	cfg.Seed, cfg.DialPod, cfg.Sink = uint64(i), ln.dialPod, r.emit
	n, err := kubeproxy.New(cfg)
	if err == nil {
		ln.count = max(ln.count, i)
		ln.slot[n] = slot
	}
	return n, err
}

// targets are what the load balancer registers: every node on its NodePort.
func (ln *labNodes) targets() []alb.Target {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	var ts []alb.Target
	for _, n := range ln.nodes {
		ts = append(ts, targetOf(n))
	}
	return ts
}

// targetOf is node n as the load balancer registers it: its NodePort.
func targetOf(n *kubeproxy.Node) alb.Target {
	host, p, _ := net.SplitHostPort(n.Addr())
	port, _ := strconv.Atoi(p)
	return alb.Target{IP: host, Port: port}
}

// healthCheckPort is a Local Service's healthCheckNodePort (0 without one).
func (ln *labNodes) healthCheckPort() int {
	if len(ln.nodes) == 0 || ln.nodes[0].HealthCheckAddr() == "" {
		return 0
	}
	_, p, _ := net.SplitHostPort(ln.nodes[0].HealthCheckAddr())
	port, _ := strconv.Atoi(p)
	return port
}

// dial is the load balancer's connect to a node's NodePort.
func (ln *labNodes) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ln.mu.Lock()
	n := ln.byAddr[addr]
	ln.mu.Unlock()
	if n == nil {
		return (&net.Dialer{}).DialContext(ctx, network, addr) // a health-check node port
	}
	return n.DialContext(ctx, network, addr)
}

// dialPod is a node's connect to a pod: unanswered once the pod's IP has
// left the network, until ctx ends or the load balancer's connect timeout.
func (ln *labNodes) dialPod(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !ln.reach.Unreachable(host) {
		return (&net.Dialer{Timeout: ln.timeout}).DialContext(ctx, network, addr)
	}
	p, _ := strconv.Atoi(port)
	opErr := &net.OpError{Op: "dial", Net: network, Addr: &net.TCPAddr{IP: net.ParseIP(host), Port: p}}
	tm := time.NewTimer(ln.timeout)
	defer tm.Stop()
	select {
	case <-tm.C:
		opErr.Err = os.ErrDeadlineExceeded
	case <-ctx.Done():
		opErr.Err = ctx.Err()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			opErr.Err = os.ErrDeadlineExceeded
		}
	}
	return nil, opErr
}

// update hands every node the Service's endpoints for pods, as the
// EndpointSlice controller publishes them (the embedded lab, which has no
// EndpointSlices). Pods are placed on the nodes round-robin in the order
// they are first seen (Local needs a nodeName).
func (ln *labNodes) update(pods func() []*corev1.Pod) {
	var eps []kubeproxy.Endpoint
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for _, p := range pods() {
		node, ok := ln.nodeOf[p.Name]
		if !ok {
			ln.placed++
			node = ln.nodes[(ln.placed-1)%len(ln.nodes)].Name()
			ln.nodeOf[p.Name] = node
		}
		p = p.DeepCopy()
		p.Spec.NodeName = node
		if ep, ok := kubeproxy.FromPod(p, AppPort); ok {
			eps = append(eps, ep)
		}
	}
	ln.applyLocked(eps)
}

// apply hands every node one snapshot of the Service's endpoints: the
// embedded lab's (update), or the real EndpointSlices' on a control plane
// (sliceFeed). The lock orders the snapshots: each node applies the last
// one it was handed.
func (ln *labNodes) apply(eps []kubeproxy.Endpoint) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.applyLocked(eps)
}

func (ln *labNodes) applyLocked(eps []kubeproxy.Endpoint) {
	ln.last = eps
	ln.nodes.Update(eps)
}

// isNode reports whether addr ("ip:port") is one of the nodes' NodePorts.
func (ln *labNodes) isNode(addr string) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	_, ok := ln.byAddr[addr]
	return ok || ln.gone[addr]
}

func (ln *labNodes) close() error {
	err := ln.closeNodes()
	if ln.lock != nil {
		ln.lock.Close()
	}
	return err
}

// closeNodes stops every node, keeping the subnet.
func (ln *labNodes) closeNodes() error {
	ln.mu.Lock()
	nodes := ln.nodes
	ln.nodes, ln.byAddr = nil, map[string]*kubeproxy.Node{}
	ln.mu.Unlock()
	return nodes.Close()
}
