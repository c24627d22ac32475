// Package nlb is a stand-in for an AWS Network Load Balancer with one TCP
// listener forwarding to one target group (ip or instance targets): a real
// TCP proxy on loopback that balances connections, not requests. Each new
// client connection is given one target for its whole life and its bytes
// are spliced both ways unread, so the stand-in never answers anything of
// its own: a client sees what it would see through an NLB — the target's
// answer, a reset, or silence.
//
// It has the target states and health checks (TCP or HTTP) of package alb,
// fail-open when no target is healthy, a deregistration that keeps sending
// new connections for DeregistrationPropagation (users measure about 2
// minutes), connections that outlive the deregistration delay unless
// connection termination is on, resets for the connections of a target
// that turns unhealthy, and the 350 s TCP idle timeout.
//
// Where it differs from an NLB, on purpose or because loopback cannot do
// otherwise:
//   - An NLB does not terminate TCP ("TCP connections are not terminated at
//     the load balancer", NLB CloudWatch metrics): the client's SYN reaches
//     the target, and a target that refuses it refuses the client. The
//     stand-in's kernel completes the client's handshake before the
//     stand-in can choose a target, so a refused target, or no target at
//     all, reaches the client as a reset (ECONNRESET, from its connect or
//     its first read) rather than a refused connect (ECONNREFUSED).
//   - An NLB has a node per availability zone, each with its own view; the
//     stand-in has one view, and a deregistration reaches it all at once
//     after DeregistrationPropagation.
//   - NLB access logs exist only for TLS listeners ("Access logs are created
//     only if the load balancer has a TLS listener", NLB user guide, access
//     logs); this TCP listener writes none. The per-connection records are
//     the lab's ground truth, nothing a user on AWS could read.
package nlb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/timeline"
)

// LB is a running Network Load Balancer stand-in.
type LB struct {
	cfg    Config
	rec    *timeline.Latch
	codes  alb.SuccessCodes
	ln     *net.TCPListener
	dialer net.Dialer
	hc     *http.Client
	tgARN  string
	lbID   string // net/name/id
	ctx    context.Context
	cancel context.CancelFunc // on Close: ends dials and health checks

	reach alb.Reachability // IPs that have left the network (SetReachable)

	mu      sync.Mutex
	targets map[string]*target // registered, including draining
	order   []*target          // the same, by address: the choice is repeatable
	flows   map[*flow]struct{}
	rng     *rand.Rand
	attrs   Attributes
	nextID  uint64
	closed  bool
	wg      sync.WaitGroup
}

// New validates cfg, listens on cfg.Listen and starts accepting. A bad
// config or a busy port is an error naming what is wrong.
func New(cfg Config) (*LB, error) {
	codes, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nlb: listen %s: %w", cfg.Listen, err)
	}
	sum := sha256.Sum256([]byte("net" + cfg.Name + cfg.Region + cfg.AccountID))
	id := hex.EncodeToString(sum[:8])
	seed := uint64(cfg.Seed)
	lb := &LB{
		cfg: cfg, rec: timeline.NewLatch(cfg.Sink), codes: codes, ln: ln.(*net.TCPListener),
		dialer:  net.Dialer{Timeout: cfg.IdleTimeout},
		tgARN:   fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", cfg.Region, cfg.AccountID, cfg.Name, id),
		lbID:    "net/" + cfg.Name + "/" + id,
		targets: map[string]*target{}, flows: map[*flow]struct{}{},
		rng:   rand.New(rand.NewPCG(seed, seed)),
		attrs: Attributes{DeregistrationDelay: cfg.DeregistrationDelay, ConnectionTermination: cfg.ConnectionTermination},
	}
	lb.ctx, lb.cancel = context.WithCancel(context.Background())
	lb.hc = newHealthClient(cfg.HealthCheck.Timeout)
	lb.wg.Add(1)
	go lb.accept()
	return lb, nil
}

// Addr is the listener's address ("127.0.0.1:port").
func (lb *LB) Addr() string { return lb.ln.Addr().String() }

// Config returns the configuration the LB runs with.
func (lb *LB) Config() Config { return lb.cfg }

// TargetGroupARN is the target group's ARN, as the ELBv2 API names it.
func (lb *LB) TargetGroupARN() string { return lb.tgARN }

// LoadBalancerARN is the load balancer's ARN ("loadbalancer/net/...").
func (lb *LB) LoadBalancerARN() string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", lb.cfg.Region, lb.cfg.AccountID, lb.lbID)
}

// healthCheckPort is the port health checks of t go to.
func (lb *LB) healthCheckPort(t alb.Target) int {
	if lb.cfg.HealthCheck.Port != 0 {
		return lb.cfg.HealthCheck.Port
	}
	return t.Port
}

// Register registers targets (port 0 means the target group's port). A new
// target starts initial, gets new connections at once (only while no
// target is healthy: fail-open) and is health-checked at once. Registering
// a draining target cancels its deregistration. Only loopback IPs are
// accepted: the lab never sends traffic off the machine.
func (lb *LB) Register(targets ...alb.Target) error {
	ts, err := lb.normalize(targets)
	if err != nil {
		return err
	}
	var recs []*timeline.Record
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return errors.New("nlb: load balancer is closed")
	}
	for _, a := range ts {
		t, ok := lb.enlist(a)
		if !ok {
			continue // already registered: AWS treats it as a no-op
		}
		recs = append(recs, lb.record(t))
		lb.wg.Add(1)
		go lb.healthChecker(t, t.stopHC, t.gen)
	}
	lb.mu.Unlock()
	lb.emit(recs...)
	return nil
}

// enlist adds a (or takes back a draining a) as a fresh registration; false
// means it is registered and in service already. Call with lb.mu held.
func (lb *LB) enlist(a alb.Target) (*target, bool) {
	t := lb.targets[a.String()]
	switch {
	case t == nil:
		t = &target{addr: a, key: a.String()}
		lb.targets[t.key] = t
		lb.order = insertSorted(lb.order, t)
	case t.draining:
		t.stopTimers()
		t.draining = false
	default:
		return nil, false
	}
	t.gen++
	t.routed, t.health, t.runs = true, alb.StateInitial, alb.HealthRuns{}
	t.reason = alb.ReasonRegistrationInProgress
	t.stopHC = make(chan struct{})
	return t, true
}

// Deregister starts draining targets: health checks stop and the state
// becomes draining; new connections keep reaching them for the
// propagation, then stop; once both the propagation and the
// deregistration delay have passed they are unused, and their remaining
// connections are reset if connection termination is on (and flow on if
// not). Deregistering a target that is not registered is a no-op.
func (lb *LB) Deregister(targets ...alb.Target) error {
	ts, err := lb.normalize(targets)
	if err != nil {
		return err
	}
	var recs []*timeline.Record
	lb.mu.Lock()
	for _, a := range ts {
		t := lb.targets[a.String()]
		if t == nil || t.draining || lb.closed {
			continue
		}
		t.draining = true
		t.gen++
		close(t.stopHC)
		t.reason = alb.ReasonDeregistrationInProgress
		recs = append(recs, lb.record(t))
		gen, prop, delay := t.gen, lb.cfg.DeregistrationPropagation, lb.attrs.DeregistrationDelay
		t.timers = append(t.timers,
			time.AfterFunc(prop, func() { lb.stopRouting(t, gen) }),
			time.AfterFunc(max(prop, delay), func() { lb.finishDrain(t, gen) }))
	}
	lb.mu.Unlock()
	lb.emit(recs...)
	return nil
}

// stopRouting ends a deregistration's propagation: from now on no new
// connection reaches t. The record is the ground truth of P.
func (lb *LB) stopRouting(t *target, gen uint64) {
	lb.mu.Lock()
	if t.gen != gen || lb.closed {
		lb.mu.Unlock()
		return
	}
	t.routed = false
	rec := lb.event(t.key, ReasonDeregistrationPropagated, nil)
	lb.mu.Unlock()
	lb.emit(rec)
}

// finishDrain ends a deregistration: t is forgotten and reported unused;
// its connections are reset if connection termination is on.
func (lb *LB) finishDrain(t *target, gen uint64) {
	lb.mu.Lock()
	if t.gen != gen || lb.closed || lb.targets[t.key] != t {
		lb.mu.Unlock()
		return
	}
	delete(lb.targets, t.key)
	lb.order = removeTarget(lb.order, t)
	t.reason = alb.ReasonNotRegistered
	rec := lb.record(t)
	rec.State = string(alb.StateUnused)
	var cut []*flow
	if lb.attrs.ConnectionTermination {
		cut = lb.flowsOf(t)
	}
	lb.mu.Unlock()
	lb.emit(rec)
	for _, f := range cut {
		f.terminate(EndDeregistrationTermination)
	}
}

// normalize fills default ports and rejects non-loopback targets.
func (lb *LB) normalize(targets []alb.Target) ([]alb.Target, error) {
	ts, err := alb.NormalizeTargets(targets, lb.cfg.TargetPort)
	if err != nil {
		return nil, fmt.Errorf("nlb: %w", err)
	}
	return ts, nil
}

// TargetHealth returns every registered target (draining included), ordered
// by address, as DescribeTargetHealth reports them.
func (lb *LB) TargetHealth() []alb.TargetHealth {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := make([]alb.TargetHealth, 0, len(lb.order))
	for _, t := range lb.order {
		out = append(out, lb.describe(t))
	}
	return out
}

// HealthOf returns the state of one target; a target that is not
// registered is unused with reason Target.NotRegistered, as the API says.
func (lb *LB) HealthOf(t alb.Target) alb.TargetHealth {
	if ts, err := lb.normalize([]alb.Target{t}); err == nil {
		t = ts[0]
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if tg := lb.targets[t.String()]; tg != nil {
		return lb.describe(tg)
	}
	return alb.TargetHealth{Target: t, State: alb.StateUnused, Reason: alb.ReasonNotRegistered,
		Description: alb.ReasonDescription(alb.ReasonNotRegistered), HealthCheckPort: lb.healthCheckPort(t)}
}

// describe reports t as the API does. Call with lb.mu held.
func (lb *LB) describe(t *target) alb.TargetHealth {
	return alb.TargetHealth{Target: t.addr, State: t.state(), Reason: t.reason,
		Description: alb.ReasonDescription(t.reason), HealthCheckPort: lb.healthCheckPort(t.addr)}
}

// SetReachable says whether ip is on the network (alb.LB.SetReachable says
// why the lab needs it: a deleted pod's IP leaves the VPC). While ip is
// unreachable, a new connection routed to a target on it gets no answer: on
// AWS the client's SYN goes to an IP nobody holds, so the client waits for
// its own connect timeout. The stand-in has accepted the client already, so
// it forwards nothing and answers nothing until the client gives up, or
// resets it at the idle timeout (EndUnreachable). Health checks of ip time
// out. Connections opened before stay as they are; only loopback IPs are
// accepted.
func (lb *LB) SetReachable(ip string, reachable bool) error {
	if err := lb.reach.Set(ip, reachable); err != nil {
		return fmt.Errorf("nlb: %w", err)
	}
	return nil
}

// Attributes are the target group attributes the LB honours.
type Attributes struct {
	// DeregistrationDelay is deregistration_delay.timeout_seconds.
	DeregistrationDelay time.Duration
	// ConnectionTermination is deregistration_delay.connection_termination.enabled.
	ConnectionTermination bool
}

// Attributes returns the current attributes.
func (lb *LB) Attributes() Attributes {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.attrs
}

// SetAttributes changes attributes. A new delay applies to deregistrations
// that start afterwards; connection termination is read when a draining
// target becomes unused.
func (lb *LB) SetAttributes(a Attributes) error {
	if a.DeregistrationDelay < 0 {
		return fmt.Errorf("nlb: DeregistrationDelay must be >= 0, got %v", a.DeregistrationDelay)
	}
	lb.mu.Lock()
	lb.attrs = a
	lb.mu.Unlock()
	return nil
}

// Close stops the listener, the health checks and the timers, and resets
// every open connection (ending them with EndClosed).
func (lb *LB) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	for _, t := range lb.targets {
		if !t.draining {
			close(t.stopHC)
		}
		t.stopTimers()
		t.gen++
	}
	flows := lb.flowsOf(nil)
	lb.mu.Unlock()
	lb.cancel()
	err := lb.ln.Close()
	for _, f := range flows {
		f.terminate(EndClosed)
	}
	lb.wg.Wait()
	if rerr := lb.Err(); rerr != nil {
		err = rerr
	}
	return err
}

// Err is the first error writing the LB's records (Config.Sink): what it
// recorded since is missing.
func (lb *LB) Err() error { return lb.rec.Err() }

// record builds a target state record, shaped as package alb's so the
// same readers take both. Call with lb.mu held.
func (lb *LB) record(t *target) *timeline.Record {
	return &timeline.Record{
		Kind: timeline.KindTarget, Time: time.Now(), Source: "lab",
		Object: t.key, State: string(t.state()), Reason: t.reason,
		Attrs: map[string]string{"target_group": lb.cfg.Name},
	}
}

// event builds a ground-truth mark about object (a target, "ip:port").
func (lb *LB) event(object, reason string, attrs map[string]string) *timeline.Record {
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["target_group"] = lb.cfg.Name
	return &timeline.Record{Kind: timeline.KindEvent, Time: time.Now(), Source: "lab",
		Object: object, Reason: reason, Attrs: attrs}
}

// emit hands records to the sink until it fails (the latch keeps the
// error for Err); never call it with lb.mu held, so a sink may call back
// into the LB.
func (lb *LB) emit(recs ...*timeline.Record) {
	for _, r := range recs {
		if lb.rec.Write(r) != nil {
			return
		}
	}
}
