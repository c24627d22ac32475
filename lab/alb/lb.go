// Package alb is a stand-in for an AWS Application Load Balancer with one
// HTTP listener forwarding to one IP target group: a real reverse proxy on
// loopback with the target states, health checks, fail-open, per-node
// deregistration propagation, deregistration delay, keep-alive reuse without
// transparent retries, timeouts and access log of the real thing. Loopback
// normally answers a connect at once, so the lab says when a pod's IP has
// left the network (SetReachable): connects to it then go unanswered until
// the connect timeout, and the client gets the 504 a deleted pod's IP gets
// on AWS. The lab drives it; its ELBv2 API lives in alb/elbv2api.
package alb

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// LB is a running load balancer.
type LB struct {
	cfg                   Config
	rec                   *timeline.Latch // in front of cfg.Sink; also fails on the access log's errors
	matcher               matcher
	ln                    net.Listener
	srv                   *http.Server
	hc                    *http.Client
	dialer                net.Dialer
	nodes                 []*node
	nextNode              atomicCounter
	tgARN                 string
	lbID                  string // app/name/id, the access log's elb field
	lbIDBytes, tgARNBytes []byte // the same, ready for the access log
	port                  string // listener port, for X-Forwarded-Port

	mu      sync.Mutex
	targets map[string]*target // registered, including draining
	rng     *rand.Rand
	delay   time.Duration // deregistration delay (an attribute: can change)
	prop    time.Duration // propagation bound P (can change)
	closed  bool
	wg      sync.WaitGroup // health checkers and timers' work
	done    chan struct{}

	// unreachable holds the IPs that have left the network (SetReachable).
	unreachable Reachability

	logMu sync.Mutex
	logW  *bufio.Writer
}

// New validates cfg, listens on cfg.Listen and starts serving. A bad config
// or a busy port is an error naming what is wrong.
func New(cfg Config) (*LB, error) {
	m, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("alb: listen %s: %w", cfg.Listen, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	sum := sha256.Sum256([]byte(cfg.Name + cfg.Region + cfg.AccountID))
	id := hex.EncodeToString(sum[:8])
	lb := &LB{
		cfg:     cfg,
		rec:     timeline.NewLatch(cfg.Sink),
		matcher: m,
		ln:      ln,
		dialer:  net.Dialer{Timeout: cfg.ConnectTimeout},
		tgARN:   ARN(cfg.Region, cfg.AccountID, "targetgroup/"+cfg.Name+"/"+id),
		lbID:    "app/" + cfg.Name + "/" + id,
		port:    port,
		targets: map[string]*target{},
		rng:     rand.New(rand.NewSource(cfg.Seed)),
		delay:   cfg.DeregistrationDelay,
		prop:    cfg.Propagation,
		done:    make(chan struct{}),
	}
	// Health checks open a new connection each time, like the ALB's; one to
	// an unreachable IP goes unanswered and times out.
	hcDialer := &net.Dialer{}
	lb.hc = &http.Client{
		Timeout: cfg.HealthCheck.Timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return lb.dial(ctx, hcDialer, addr) }},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is judged by the matcher, not followed
		},
	}
	lb.lbIDBytes, lb.tgARNBytes = []byte(lb.lbID), []byte(lb.tgARN)
	for i := range cfg.Nodes {
		n := &node{id: i, seq: map[*target]uint64{}}
		n.table.Store(&routeTable{})
		lb.nodes = append(lb.nodes, n)
	}
	if cfg.AccessLog != nil {
		lb.logW = bufio.NewWriterSize(cfg.AccessLog, 64<<10)
	}
	lb.srv = &http.Server{
		Handler:     lb,
		IdleTimeout: cfg.ClientIdleTimeout,
		// A client connection stays on one LB node, as a TCP connection to
		// one of the ALB's IP addresses does.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, nodeKey{}, lb.nodes[lb.nextNode.next()%uint64(len(lb.nodes))])
		},
		ErrorLog: discardLogger,
	}
	go lb.srv.Serve(ln)
	lb.wg.Add(1)
	go lb.janitor()
	return lb, nil
}

// Addr is the listener's address ("127.0.0.1:port").
func (lb *LB) Addr() string { return lb.ln.Addr().String() }

// URL is "http://" + Addr().
func (lb *LB) URL() string { return "http://" + lb.Addr() }

// Config returns the configuration the LB runs with.
func (lb *LB) Config() Config { return lb.cfg }

// TargetGroupARN is the ARN the access log and the ELBv2 API use.
func (lb *LB) TargetGroupARN() string { return lb.tgARN }

// LoadBalancerARN is the load balancer's ARN.
func (lb *LB) LoadBalancerARN() string {
	return ARN(lb.cfg.Region, lb.cfg.AccountID, "loadbalancer/"+lb.lbID)
}

// healthCheckPort is the port health checks go to for t.
func (lb *LB) healthCheckPort(t Target) int {
	if lb.cfg.HealthCheck.Port != 0 {
		return lb.cfg.HealthCheck.Port
	}
	return t.Port
}

// Register registers targets (port 0 means the target group's port). A new
// target starts initial and is health-checked at once; each node starts
// routing to it after its own propagation delay. Registering a draining
// target cancels its deregistration. Only loopback IPs are accepted: the lab
// never sends traffic off the machine.
func (lb *LB) Register(targets ...Target) error {
	ts, err := lb.normalize(targets)
	if err != nil {
		return err
	}
	var recs []*timeline.Record
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return errors.New("alb: load balancer is closed")
	}
	for _, a := range ts {
		t := lb.targets[a.String()]
		switch {
		case t == nil:
			t = &target{addr: a, key: a.String()}
			lb.targets[t.key] = t
		case t.draining.Load():
			t.drainTimer.Stop() // the timer's func also checks gen, so a late fire is harmless
			t.draining.Store(false)
		default:
			continue // already registered: AWS treats it as a no-op
		}
		t.gen++
		t.health.Store(hInitial)
		t.runs = HealthRuns{}
		t.reason = ReasonRegistrationInProgress
		t.stopHC = make(chan struct{})
		recs = append(recs, lb.record(t))
		recs = append(recs, lb.propagate(t, true)...)
		lb.wg.Add(1)
		go lb.healthChecker(t, t.stopHC, t.gen)
	}
	lb.mu.Unlock()
	lb.emit(recs)
	return nil
}

// Deregister starts draining targets: health checks stop, the state becomes
// draining, each node stops routing new requests to them after its own
// propagation delay, and after the deregistration delay the remaining
// connections are cut and the targets become unused. Deregistering a
// target that is not registered is a no-op.
func (lb *LB) Deregister(targets ...Target) error {
	ts, err := lb.normalize(targets)
	if err != nil {
		return err
	}
	var recs []*timeline.Record
	lb.mu.Lock()
	for _, a := range ts {
		t := lb.targets[a.String()]
		if t == nil || t.draining.Load() || lb.closed {
			continue
		}
		t.draining.Store(true)
		t.gen++
		close(t.stopHC)
		t.reason = ReasonDeregistrationInProgress
		recs = append(recs, lb.record(t))
		recs = append(recs, lb.propagate(t, false)...)
		gen := t.gen
		t.drainTimer = time.AfterFunc(lb.delay, func() { lb.finishDrain(t, gen) })
	}
	lb.mu.Unlock()
	lb.emit(recs)
	return nil
}

// finishDrain ends a deregistration: in-flight requests are cut, the target
// is forgotten by every node and reported unused.
func (lb *LB) finishDrain(t *target, gen uint64) {
	lb.mu.Lock()
	if t.gen != gen || !t.draining.Load() || lb.targets[t.key] != t {
		lb.mu.Unlock()
		return
	}
	t.cut.Store(true)
	delete(lb.targets, t.key)
	for _, n := range lb.nodes {
		delete(n.seq, t)
		n.forget(t)
	}
	lb.rebuildAll()
	t.reason = ReasonNotRegistered
	rec := lb.record(t)
	rec.State = string(StateUnused)
	lb.mu.Unlock()
	t.pool.closeAll()
	lb.emit([]*timeline.Record{rec})
}

// normalize fills default ports and rejects non-loopback targets.
func (lb *LB) normalize(targets []Target) ([]Target, error) {
	ts, err := NormalizeTargets(targets, lb.cfg.TargetPort)
	if err != nil {
		return nil, fmt.Errorf("alb: %w", err)
	}
	return ts, nil
}

// NormalizeTargets gives targets registered without a port defaultPort (the
// target group's), spells IPs canonically and rejects any IP that is not
// loopback: the lab never sends traffic off the machine. Package nlb
// shares it.
func NormalizeTargets(targets []Target, defaultPort int) ([]Target, error) {
	out := make([]Target, 0, len(targets))
	for _, t := range targets {
		ip := net.ParseIP(t.IP)
		if ip == nil {
			return nil, fmt.Errorf("target %q: not an IP address", t.IP)
		}
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("target %s: not a loopback address (the lab only sends traffic to 127.0.0.0/8 and ::1)", t.IP)
		}
		if t.Port == 0 {
			t.Port = defaultPort
		}
		if t.Port < 1 || t.Port > 65535 {
			return nil, fmt.Errorf("target %s: port %d out of range 1-65535", t.IP, t.Port)
		}
		t.IP = ip.String()
		out = append(out, t)
	}
	return out, nil
}

// TargetHealth returns every registered target (draining included) with the
// state the proxy routes by, ordered by address.
func (lb *LB) TargetHealth() []TargetHealth {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := make([]TargetHealth, 0, len(lb.targets))
	for _, t := range lb.targets {
		out = append(out, t.describe(lb.healthCheckPort(t.addr)))
	}
	sortHealth(out)
	return out
}

// HealthOf returns the state of one target; a target that is not
// registered is unused with reason Target.NotRegistered, as the API says.
func (lb *LB) HealthOf(t Target) TargetHealth {
	ts, err := lb.normalize([]Target{t})
	if err == nil {
		t = ts[0]
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if tg := lb.targets[t.String()]; tg != nil {
		return tg.describe(lb.healthCheckPort(t))
	}
	return TargetHealth{Target: t, State: StateUnused, Reason: ReasonNotRegistered,
		Description: reasonDescription[ReasonNotRegistered], HealthCheckPort: lb.healthCheckPort(t)}
}

// Attributes are the target group attributes the LB honours.
type Attributes struct {
	// DeregistrationDelay is deregistration_delay.timeout_seconds.
	DeregistrationDelay time.Duration
}

// Attributes returns the current attributes.
func (lb *LB) Attributes() Attributes {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return Attributes{DeregistrationDelay: lb.delay}
}

// SetAttributes changes attributes. A new deregistration delay applies to
// deregistrations that start afterwards, as on AWS.
func (lb *LB) SetAttributes(a Attributes) error {
	if a.DeregistrationDelay < 0 {
		return fmt.Errorf("alb: DeregistrationDelay must be >= 0, got %v", a.DeregistrationDelay)
	}
	lb.mu.Lock()
	lb.delay = a.DeregistrationDelay
	lb.mu.Unlock()
	return nil
}

// SetPropagation changes P for registrations and deregistrations that
// start afterwards (a lab scenario may hold P at zero while it sets up).
func (lb *LB) SetPropagation(p time.Duration) error {
	if p < 0 {
		return fmt.Errorf("alb: Propagation must be >= 0, got %v", p)
	}
	lb.mu.Lock()
	lb.prop = p
	lb.mu.Unlock()
	return nil
}

// Close stops the listener, the health checkers and the timers, closes every
// backend connection and flushes the access log. Requests in flight fail.
func (lb *LB) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	close(lb.done)
	for _, t := range lb.targets {
		if !t.draining.Load() {
			close(t.stopHC)
		} else {
			t.drainTimer.Stop()
		}
		t.gen++
	}
	for _, n := range lb.nodes {
		for tm := range n.timers {
			tm.Stop()
		}
	}
	ts := make([]*target, 0, len(lb.targets))
	for _, t := range lb.targets {
		ts = append(ts, t)
	}
	lb.mu.Unlock()
	err := lb.srv.Close()
	for _, t := range ts {
		t.pool.closeAll()
	}
	lb.wg.Wait()
	if ferr := lb.FlushAccessLog(); err == nil {
		err = ferr
	}
	if err == nil {
		err = lb.Err()
	}
	return err
}

// Err is the first error writing the LB's records (Config.Sink) or its
// access log: what it recorded since is missing.
func (lb *LB) Err() error { return lb.rec.Err() }

// record builds a target state record; call with lb.mu held.
func (lb *LB) record(t *target) *timeline.Record {
	return &timeline.Record{
		Kind: timeline.KindTarget, Time: time.Now(), Source: "lab",
		Object: t.key, State: string(t.state()), Reason: t.reason,
		Attrs: map[string]string{"target_group": lb.cfg.Name},
	}
}

// emit hands records to the sink until it fails (the latch keeps the
// error for Err); never call it with lb.mu held, so a sink may call back
// into the LB.
func (lb *LB) emit(recs []*timeline.Record) {
	for _, r := range recs {
		if lb.rec.Write(r) != nil {
			return
		}
	}
}

// janitor closes backend connections idle past BackendIdleTimeout (so the
// target sees the LB close first, as with a real ALB) and flushes the
// access log now and then.
func (lb *LB) janitor() {
	defer lb.wg.Done()
	every := min(lb.cfg.BackendIdleTimeout/4, 200*time.Millisecond)
	every = max(every, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-lb.done:
			return
		case now := <-tick.C:
			lb.mu.Lock()
			ts := make([]*target, 0, len(lb.targets))
			for _, t := range lb.targets {
				ts = append(ts, t)
			}
			lb.mu.Unlock()
			for _, t := range ts {
				t.pool.expire(now.Add(-lb.cfg.BackendIdleTimeout))
			}
			lb.FlushAccessLog() // an error is kept for Err
		}
	}
}

// FlushAccessLog writes buffered access log lines to Config.AccessLog.
func (lb *LB) FlushAccessLog() error {
	if lb.logW == nil {
		return nil
	}
	lb.logMu.Lock()
	defer lb.logMu.Unlock()
	return lb.logFailed(lb.logW.Flush())
}

// logFailed keeps an access-log write error for Err and returns it.
func (lb *LB) logFailed(err error) error {
	if err != nil {
		err = fmt.Errorf("alb: access log: %w", err)
		lb.rec.Fail(err)
	}
	return err
}

// discardLogger silences net/http's per-connection error lines: failures
// are reported through the access log and OnRequest instead.
var discardLogger = log.New(io.Discard, "", 0)
