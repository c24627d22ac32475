package albcontroller_test

// The controller stand-in against the real ALB stand-in (package alb) on
// loopback, with real HTTP backends as pods. The assertions follow events
// (target records from the LB's Sink, gate calls, Wait returning), never
// wall-clock bounds: a lag or requeue too long for the test to reach is
// how "not before" is shown.

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/albcontroller"
	"github.com/rollsafe/rollsafe/lab/nlb"
	"github.com/rollsafe/rollsafe/timeline"
)

const (
	gate  = corev1.PodConditionType(defaults.GatePrefix + "k8s-test-tgb")
	other = corev1.PodConditionType("example.com/not-the-controllers")
	never = time.Hour // a lag or requeue no test waits out
)

// Both lab load balancers are target groups the controller can drive.
var (
	_ albcontroller.TargetGroup = (*alb.LB)(nil)
	_ albcontroller.TargetGroup = (*nlb.LB)(nil)
)

// targetGroup is a lab load balancer as the tests use it: the controller's
// TargetGroup, and every target, to check what was registered.
type targetGroup interface {
	albcontroller.TargetGroup
	TargetHealth() []alb.TargetHealth
}

// fixture is one LB, its backends ("pods" on 127.0.0.x at one port), the
// pods the controller can Get, and what happened, in order.
type fixture struct {
	t      *testing.T
	lb     targetGroup
	port   int
	health atomic.Int32 // what every backend's /readyz answers

	mu     sync.Mutex
	pods   map[string]*corev1.Pod
	events []string // "target <ip:port> <state>" and "gate <pod> <type> <LB state then>"
	signal chan struct{}
}

// newFixture is a fixture over an ALB.
func newFixture(t *testing.T, ips ...string) *fixture {
	t.Helper()
	f := newBackends(t, ips...)
	cfg := alb.DefaultConfig()
	cfg.Name = "k8s-test"
	cfg.TargetPort = f.port
	cfg.HealthCheck = alb.HealthCheck{Path: "/readyz", Interval: 20 * time.Millisecond, Timeout: time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 2, Matcher: "200"}
	cfg.Nodes, cfg.Propagation = 1, 0
	cfg.DeregistrationDelay = never // draining stays draining
	cfg.Sink = f.sink()
	return f.use(alb.New(cfg))
}

// newNLBFixture is a fixture over an NLB with the API's default TCP health
// check, quickened.
func newNLBFixture(t *testing.T, ips ...string) *fixture {
	t.Helper()
	f := newBackends(t, ips...)
	cfg := nlb.DefaultConfig()
	cfg.Name = "k8s-test-nlb"
	cfg.TargetPort = f.port
	cfg.HealthCheck.Interval, cfg.HealthCheck.Timeout = 20*time.Millisecond, time.Second
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationPropagation = 0
	cfg.DeregistrationDelay = never // draining stays draining
	cfg.Sink = f.sink()
	return f.use(nlb.New(cfg))
}

// use makes lb, as New returned it, the fixture's LB, closed at the end.
func (f *fixture) use(lb interface {
	targetGroup
	Close() error
}, err error) *fixture {
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { lb.Close() })
	f.lb = lb
	return f
}

// newBackends starts a fixture's backends, with no LB yet.
func newBackends(t *testing.T, ips ...string) *fixture {
	f := &fixture{t: t, pods: map[string]*corev1.Pod{}, signal: make(chan struct{}, 1000)}
	f.health.Store(200)
	for _, ip := range ips {
		f.serve(ip)
	}
	return f
}

// sink notes each target's state changes (a reason change alone is not an
// event here).
func (f *fixture) sink() timeline.Sink {
	last := map[string]string{}
	var mu sync.Mutex
	return func(r *timeline.Record) error {
		if r.Kind != timeline.KindTarget {
			return nil
		}
		mu.Lock()
		changed := last[r.Object] != r.State
		last[r.Object] = r.State
		mu.Unlock()
		if changed {
			f.note("target " + r.Object + " " + r.State)
		}
		return nil
	}
}

// serve starts a backend on ip at the fixture's port (the first picks it).
func (f *fixture) serve(ip string) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(f.port)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(f.health.Load()))
	})}
	go srv.Serve(ln)
	f.t.Cleanup(func() { srv.Close() })
}

func (f *fixture) note(ev string) {
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	f.signal <- struct{}{}
}

// controller starts a Controller whose Get and SetGate use the fixture.
func (f *fixture) controller(ctx context.Context, lag, requeue time.Duration) *albcontroller.Controller {
	return albcontroller.New(ctx, albcontroller.Options{
		LB: f.lb, Port: f.port, Lag: lag, Requeue: requeue,
		Get: func(name string) (*corev1.Pod, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			p, ok := f.pods[name]
			return p, ok
		},
		SetGate: func(p *corev1.Pod, typ corev1.PodConditionType) error {
			state := f.lb.HealthOf(alb.Target{IP: p.Status.PodIP, Port: f.port}).State
			f.note("gate " + p.Name + " " + string(typ) + " " + string(state))
			return nil
		},
	})
}

// put stores the pod snapshot the controller's Get returns and hands it to Observe.
func (f *fixture) put(c *albcontroller.Controller, p *corev1.Pod) {
	f.mu.Lock()
	f.pods[p.Name] = p
	f.mu.Unlock()
	c.Observe(p)
}

// waitFor returns once ev has happened.
func (f *fixture) waitFor(ev string) {
	f.t.Helper()
	deadline := time.After(30 * time.Second) // liveness only: the event never came
	for !f.happened(ev) {
		select {
		case <-f.signal:
		case <-deadline:
			f.t.Fatalf("never saw %q; events %q", ev, f.snapshot())
		}
	}
}

func (f *fixture) happened(ev string) bool {
	for _, e := range f.snapshot() {
		if e == ev {
			return true
		}
	}
	return false
}

// gates are the gate events so far.
func (f *fixture) gates() []string {
	var out []string
	for _, e := range f.snapshot() {
		if strings.HasPrefix(e, "gate ") {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// waitIdle calls Wait, failing the test if a pending action never ends.
func waitIdle(t *testing.T, c *albcontroller.Controller) {
	t.Helper()
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // liveness only
		t.Fatal("Wait did not return: an action is still pending")
	}
}

func pod(name, ip string, ready bool, gates ...corev1.PodConditionType) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "lab"}}
	p.Status.PodIP = ip
	p.Status.Phase = corev1.PodRunning
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: status}}
	for _, g := range gates {
		p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: g})
	}
	return p
}

func terminating(p *corev1.Pod) *corev1.Pod {
	q := p.DeepCopy()
	now := metav1.Now()
	q.DeletionTimestamp = &now
	return q
}

func target(f *fixture, ip string) string { return net.JoinHostPort(ip, strconv.Itoa(f.port)) }

// The gate is set once the target is healthy, and only the controller's
// own gate: never while the target is initial.
func TestGateSetOnceTargetHealthy(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	c := f.controller(context.Background(), 0, 20*time.Millisecond)
	f.put(c, pod("a", "127.0.0.2", true, gate, other))
	f.waitFor("gate a " + string(gate) + " healthy")
	waitIdle(t, c)
	want := []string{
		"target " + target(f, "127.0.0.2") + " initial",
		"target " + target(f, "127.0.0.2") + " healthy",
		"gate a " + string(gate) + " healthy",
	}
	if got := f.snapshot(); !equal(got, want) {
		t.Fatalf("events %q; want %q", got, want)
	}
}

// Without a readiness gate the pod is registered and no gate is ever set.
func TestNoGateRegistersWithoutSettingGates(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	c := f.controller(context.Background(), 0, 20*time.Millisecond)
	f.put(c, pod("a", "127.0.0.2", true, other))
	f.waitFor("target " + target(f, "127.0.0.2") + " healthy")
	waitIdle(t, c) // the registration action has returned: no gate watch runs
	if g := f.gates(); len(g) > 0 {
		t.Fatalf("a pod without the controller's gate got %q", g)
	}
}

// A pod is registered only once its containers are ready and it has an IP;
// the controller is level-triggered, so a later ready snapshot of the same
// pod registers it.
func TestRegistersOnlyReadyPodsWithAnIP(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	c := f.controller(context.Background(), 0, never)
	f.put(c, pod("a", "127.0.0.2", false))
	f.put(c, pod("b", "", true))
	f.put(c, pod("a", "127.0.0.2", true))
	f.waitFor("target " + target(f, "127.0.0.2") + " initial")
	waitIdle(t, c) // every action Observe scheduled has run
	th := f.lb.TargetHealth()
	if len(th) != 1 || th[0].Target.IP != "127.0.0.2" {
		t.Fatalf("targets %v; want only pod a's, registered once it was ready", th)
	}
}

// A terminating pod's target is deregistered, by the IP it was registered
// with (the terminating snapshot may carry none), one lag after the
// snapshot: no sooner.
func TestTerminatingPodDeregisteredAfterTheLag(t *testing.T) {
	const lag = 50 * time.Millisecond
	f := newFixture(t, "127.0.0.2")
	c := f.controller(context.Background(), lag, never)
	a := pod("a", "127.0.0.2", true)
	f.put(c, a)
	f.waitFor("target " + target(f, "127.0.0.2") + " healthy")
	gone := terminating(a)
	gone.Status.PodIP = ""
	observed := time.Now()
	f.put(c, gone)
	f.waitFor("target " + target(f, "127.0.0.2") + " draining")
	// A lower bound, never flaky: the call waits on a timer of the lag.
	if el := time.Since(observed); el < lag {
		t.Fatalf("deregistered %v after the terminating snapshot, inside the %v lag", el, lag)
	}
	waitIdle(t, c)
}

// Pods that end without a terminating snapshot are deregistered too: a
// terminal phase (Succeeded, Failed) or a vanished pod (Forget).
func TestTerminalAndVanishedPodsDeregistered(t *testing.T) {
	f := newFixture(t, "127.0.0.2", "127.0.0.3")
	c := f.controller(context.Background(), 0, never)
	a, b := pod("a", "127.0.0.2", true), pod("b", "127.0.0.3", true)
	f.put(c, a)
	f.put(c, b)
	f.waitFor("target " + target(f, "127.0.0.2") + " healthy")
	f.waitFor("target " + target(f, "127.0.0.3") + " healthy")
	failed := a.DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	f.put(c, failed)
	c.Forget("b")
	f.waitFor("target " + target(f, "127.0.0.2") + " draining")
	f.waitFor("target " + target(f, "127.0.0.3") + " draining")
	waitIdle(t, c)
}

// Each ELBv2 call waits for the lag: with a lag the test never waits out,
// ending ctx abandons the registration and Wait returns with nothing done.
func TestPendingCallsAbandonedWhenCtxEnds(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	ctx, cancel := context.WithCancel(context.Background())
	c := f.controller(ctx, never, never)
	f.put(c, pod("a", "127.0.0.2", true, gate))
	cancel()
	waitIdle(t, c)
	if th := f.lb.TargetHealth(); len(th) != 0 {
		t.Fatalf("registered %v though the lag never passed", th)
	}
}

// The gate is re-checked only every requeue period, not when the target
// turns healthy: with a requeue the test never waits out, the first check
// (at registration, target initial) is the only one, and the gate stays
// unset after the target is healthy.
func TestGateCheckedOnlyEveryRequeue(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	ctx, cancel := context.WithCancel(context.Background())
	c := f.controller(ctx, 0, never)
	f.put(c, pod("a", "127.0.0.2", true, gate))
	f.waitFor("target " + target(f, "127.0.0.2") + " healthy")
	cancel() // ends the requeue wait
	waitIdle(t, c)
	if g := f.gates(); len(g) > 0 {
		t.Fatalf("gate set before the next requeue: %q", g)
	}
}

// The gate watch ends when the pod starts terminating: a target that never
// turns healthy does not keep it polling for ever.
func TestGateWatchStopsWhenPodTerminates(t *testing.T) {
	f := newFixture(t, "127.0.0.2")
	f.health.Store(503) // never healthy
	c := f.controller(context.Background(), 0, 20*time.Millisecond)
	a := pod("a", "127.0.0.2", true, gate)
	f.put(c, a)
	f.waitFor("target " + target(f, "127.0.0.2") + " unhealthy")
	f.put(c, terminating(a))
	f.waitFor("target " + target(f, "127.0.0.2") + " draining")
	waitIdle(t, c) // returns only once the watch has seen the terminating pod
	if g := f.gates(); len(g) > 0 {
		t.Fatalf("gate set on a target that was never healthy: %q", g)
	}
}

// The controller drives an NLB's target group as it does an ALB's: the
// gate is set once the target passes the NLB's TCP health checks, and the
// target is deregistered when the pod terminates.
func TestControllerDrivesAnNLB(t *testing.T) {
	f := newNLBFixture(t, "127.0.0.2")
	c := f.controller(context.Background(), 0, 20*time.Millisecond)
	a := pod("a", "127.0.0.2", true, gate)
	f.put(c, a)
	f.waitFor("gate a " + string(gate) + " healthy")
	f.put(c, terminating(a))
	f.waitFor("target " + target(f, "127.0.0.2") + " draining")
	waitIdle(t, c)
	want := []string{
		"target " + target(f, "127.0.0.2") + " initial",
		"target " + target(f, "127.0.0.2") + " healthy",
		"gate a " + string(gate) + " healthy",
		"target " + target(f, "127.0.0.2") + " draining",
	}
	if got := f.snapshot(); !equal(got, want) {
		t.Fatalf("events %q; want %q", got, want)
	}
	if h := f.lb.HealthOf(alb.Target{IP: "127.0.0.2", Port: f.port}); h.Reason != alb.ReasonDeregistrationInProgress {
		t.Fatalf("after termination the NLB has %+v; want draining, deregistration in progress", h)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
