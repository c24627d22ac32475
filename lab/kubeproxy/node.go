package kubeproxy

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// ReasonLearned is the Reason of the record a node writes when it applies
// an endpoint change.
const ReasonLearned = "kubeproxy.NodeLearnedEndpoints"

// Node is one node's kube-proxy for one Service port: a NodePort listener
// on the node's loopback address that forwards each new connection to one
// endpoint of the node's own view, and a health-check node port for a Local
// Service. Safe for concurrent use.
type Node struct {
	cfg     Config
	addr    *net.TCPAddr // the NodePort, its port fixed by New
	rec     *timeline.Latch
	health  *healthServer // nil without HealthCheckListen
	dialPod func(ctx context.Context, network, addr string) (net.Conn, error)
	ctx     context.Context // ends at Close: stops dials to pods
	cancel  context.CancelFunc

	mu      sync.Mutex
	rng     *rand.Rand
	view    *view
	seq     uint64 // last Update
	applied uint64 // last Update applied
	timers  map[*pending]struct{}
	ln      net.Listener // nil while the node rejects
	conns   map[net.Conn]struct{}
	stats   Stats
	closed  bool
	wg      sync.WaitGroup
}

// Stats counts what a node did with connections to its NodePort and through
// DialContext. It is ground truth: the load balancer cannot see it.
type Stats struct {
	// Pinned counts the connections forwarded to each endpoint, ever.
	Pinned map[netip.AddrPort]int
	// PodDialFailed counts connections whose dial to the chosen pod failed
	// (refused, or unanswered through Config.DialPod): the listener reset
	// them, DialContext returned the error.
	PodDialFailed int
	// Dropped counts connections the node left unanswered (Verdict Drop).
	Dropped int
	// Rejected counts connections the listener accepted just before it
	// closed for a Reject, and reset.
	Rejected int
}

// New starts a node that knows no endpoint yet, so it rejects (its NodePort
// refuses connections) until its first Update is applied. Its health-check
// node port, if any, answers from New on.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kubeproxy: node %s: %w", cfg.Name, err)
	}
	ln.Close() // kept only to fix the port: with no endpoint the node refuses
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, addr: ln.Addr().(*net.TCPAddr), rec: timeline.NewLatch(cfg.Sink), ctx: ctx, cancel: cancel,
		rng:  rand.New(rand.NewPCG(cfg.Seed, nameHash(cfg.Name))),
		view: newView(nil, cfg.Policy, cfg.Name), timers: map[*pending]struct{}{}, conns: map[net.Conn]struct{}{},
	}
	if n.dialPod = cfg.DialPod; n.dialPod == nil {
		n.dialPod = (&net.Dialer{}).DialContext
	}
	if cfg.HealthCheckListen != "" {
		if n.health, err = startHealth(cfg.HealthCheckListen, n.serveHealth); err != nil {
			cancel()
			return nil, fmt.Errorf("kubeproxy: node %s: health check: %w", cfg.Name, err)
		}
	}
	return n, nil
}

// Addr is the NodePort address: what the load balancer registers as this
// node's target.
func (n *Node) Addr() string { return n.addr.String() }

// HealthCheckAddr is the health-check node port's address ("" without one).
func (n *Node) HealthCheckAddr() string {
	if n.health == nil {
		return ""
	}
	return n.health.addr()
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Update hands the node the Service's current endpoints (every
// EndpointSlice's endpoints, a full snapshot). The node applies it after its
// Lag; a snapshot overtaken by a newer one before it applies is skipped, as
// kube-proxy folds changes that arrive between two syncs into one.
func (n *Node) Update(eps []Endpoint) {
	snapshot := append([]Endpoint(nil), eps...)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.seq++
	seq := n.seq
	p := &pending{}
	n.wg.Add(1) // done by apply, or by Close when it stops the timer first
	p.tm = time.AfterFunc(n.cfg.Lag, func() { n.apply(p, seq, snapshot) })
	n.timers[p] = struct{}{}
}

// pending is one scheduled update. Its timer is set under n.mu, which apply
// takes before it looks at it: a timer of lag 0 may fire before Update has
// stored it.
type pending struct{ tm *time.Timer }

// apply makes snapshot seq the node's view, unless a newer one is applied.
func (n *Node) apply(p *pending, seq uint64, snapshot []Endpoint) {
	defer n.wg.Done()
	n.mu.Lock()
	delete(n.timers, p)
	if n.closed || seq <= n.applied {
		n.mu.Unlock()
		return
	}
	n.applied = seq
	n.view = newView(snapshot, n.cfg.Policy, n.cfg.Name)
	err := n.listen(n.view.verdict != Reject)
	rec := n.learned(n.view)
	n.mu.Unlock()
	if err != nil {
		n.rec.Fail(err)
	}
	n.rec.Write(rec) // a failed sink is kept in the latch: Err and Close report it
}

// learned is the ground-truth record of a view taking effect.
func (n *Node) learned(v *view) *timeline.Record {
	usable := make([]string, len(v.usable))
	for i, e := range v.usable {
		usable[i] = e.Addr.String()
	}
	return &timeline.Record{
		Kind: timeline.KindEvent, Time: time.Now(), Source: "lab", Scenario: n.cfg.Scenario,
		Object: n.Addr(), State: string(v.verdict), Reason: ReasonLearned,
		Attrs: map[string]string{
			"node": n.cfg.Name, "policy": string(n.cfg.Policy), "endpoints": strconv.Itoa(len(v.all)),
			"usable": strings.Join(usable, ","), "local_ready": strconv.Itoa(v.localReady),
		},
	}
}

// Verdict is what the node now does with a new connection.
func (n *Node) Verdict() Verdict {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.view.verdict
}

// Usable returns the endpoints the node now forwards new connections to.
func (n *Node) Usable() []Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Endpoint(nil), n.view.usable...)
}

// Stats returns a copy of the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Pinned = make(map[netip.AddrPort]int, len(n.stats.Pinned))
	for k, v := range n.stats.Pinned {
		s.Pinned[k] = v
	}
	return s
}

// Err is the first error of the sink, of a re-listen or of an accept: after
// it the recording has a hole or the node stopped answering.
func (n *Node) Err() error { return n.rec.Err() }

// Close stops the node: pending updates are dropped, the listeners close and
// every connection through the node is closed. It returns Err once
// everything the node started has ended, so no record comes after it.
func (n *Node) Close() error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for p := range n.timers {
			if p.tm.Stop() {
				n.wg.Done() // its apply will never run
			}
		}
		n.listen(false)
		for c := range n.conns {
			c.Close()
		}
	}
	n.mu.Unlock()
	n.cancel()
	if n.health != nil {
		n.health.close()
	}
	n.wg.Wait()
	return n.Err()
}

// nameHash gives each node its own random stream from one Seed.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}
