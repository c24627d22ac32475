package nlb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/timeline"
)

// The ELBv2 API stand-in (lab/alb/elbv2api) and the controller stand-in
// (lab/albcontroller) use these of an alb.LB; an LB has them with the same
// signatures, so an interface there can take both.
var _ interface {
	TargetGroupARN() string
	LoadBalancerARN() string
	TargetHealth() []alb.TargetHealth
	HealthOf(alb.Target) alb.TargetHealth
	Register(...alb.Target) error
	Deregister(...alb.Target) error
} = (*LB)(nil)

func TestConnectionsNotRequestsAreBalanced(t *testing.T) {
	recs := &testutil.Records{}
	lb := newLB(t, testConfig(recs))
	var webs []*web
	for i := range 3 {
		w := startWeb(t, fmt.Sprintf("127.0.31.%d", i+1), fmt.Sprint("pod-", i))
		webs = append(webs, w)
		register(t, lb, w.target)
	}
	for _, w := range webs {
		waitState(t, lb, w.target, alb.StateHealthy)
	}
	get := func(c *http.Client) string {
		resp, err := c.Get("http://" + lb.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Served-By")
	}
	keepAlive := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer keepAlive.CloseIdleConnections()
	one := map[string]int{}
	for range 30 {
		one[get(keepAlive)]++
	}
	if len(one) != 1 || len(flowEvents(recs, ReasonFlowOpened)) != 1 {
		t.Fatalf("one keep-alive connection, 30 requests: served by %v over %d connections, want one target", one, len(flowEvents(recs, ReasonFlowOpened)))
	}
	each := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	many := map[string]int{}
	for range 30 {
		many[get(each)]++
	}
	if len(many) != 3 {
		t.Fatalf("30 connections: served by %v, want all 3 targets", many)
	}
}

// twoHealthy starts two echo targets a and b behind a new LB.
func twoHealthy(t *testing.T, cfg Config, ip string) (*LB, *echo, *echo) {
	t.Helper()
	lb := newLB(t, cfg)
	a, b := startEcho(t, ip+".1", "a"), startEcho(t, ip+".2", "b")
	register(t, lb, a.target, b.target)
	waitState(t, lb, a.target, alb.StateHealthy)
	waitState(t, lb, b.target, alb.StateHealthy)
	return lb, a, b
}

func TestDeregisteredTargetGetsNewConnectionsDuringPropagation(t *testing.T) {
	recs := &testutil.Records{}
	lb, a, _ := twoHealthy(t, testConfig(recs), "127.0.32") // propagation: an hour
	deregister(t, lb, a.target)
	if got := lb.HealthOf(a.target).State; got != alb.StateDraining {
		t.Fatalf("deregistered target is %s, want draining", got)
	}
	during := fresh(t, lb, 30)
	if during["a"] == 0 || during["b"] == 0 {
		t.Fatalf("during propagation: %v, want new connections on the draining target too", during)
	}
	for _, r := range flowEvents(recs, ReasonFlowOpened) {
		if r.Object == a.target.String() && r.Attrs["target_state"] != string(alb.StateDraining) {
			t.Fatalf("flow to a after its deregistration recorded as %q", r.Attrs["target_state"])
		}
	}
}

func TestDeregisteredTargetGetsNoNewConnectionAfterPropagation(t *testing.T) {
	recs := &testutil.Records{}
	cfg := testConfig(recs)
	cfg.DeregistrationPropagation = 20 * time.Millisecond
	lb, a, _ := twoHealthy(t, cfg, "127.0.39")
	deregister(t, lb, a.target)
	waitRecord(t, recs, "propagation mark", func(r timeline.Record) bool {
		return r.Reason == ReasonDeregistrationPropagated && r.Object == a.target.String()
	})
	after := fresh(t, lb, 30)
	if after["a"] != 0 || after["b"] != 30 {
		t.Fatalf("after propagation: %v, want every new connection on b", after)
	}
	if got := lb.HealthOf(a.target).State; got != alb.StateDraining {
		t.Fatalf("after propagation, before the delay: %s, want draining", got)
	}
}

func TestExistingConnectionsAndDeregistrationDelay(t *testing.T) {
	for _, termination := range []bool{false, true} {
		t.Run(fmt.Sprint("termination=", termination), func(t *testing.T) {
			recs := &testutil.Records{}
			cfg := testConfig(recs)
			cfg.DeregistrationPropagation = 10 * time.Millisecond
			cfg.DeregistrationDelay = 30 * time.Millisecond
			cfg.ConnectionTermination = termination
			lb := newLB(t, cfg)
			a := startEcho(t, "127.0.33.1", "a")
			register(t, lb, a.target)
			waitState(t, lb, a.target, alb.StateHealthy)
			l := dialLine(t, lb)
			if got, err := l.say("before"); err != nil || got != "a before" {
				t.Fatalf("before: %q %v", got, err)
			}
			deregister(t, lb, a.target)
			waitRecord(t, recs, "unused", func(r timeline.Record) bool {
				return r.Kind == timeline.KindTarget && r.State == string(alb.StateUnused)
			})
			got, err := l.say("after")
			if !termination {
				if err != nil || got != "a after" {
					t.Fatalf("termination off: after the delay %q %v, want the connection flowing", got, err)
				}
				return
			}
			if !isReset(err) {
				t.Fatalf("termination on: after the delay %q %v, want a reset", got, err)
			}
			waitRecord(t, recs, "flow end", closedWith(EndDeregistrationTermination, a.target.String()))
		})
	}
}

func TestIdleTimeoutResetsTheNextSender(t *testing.T) {
	recs := &testutil.Records{}
	cfg := testConfig(recs)
	cfg.IdleTimeout = 50 * time.Millisecond
	lb := newLB(t, cfg)
	a := startEcho(t, "127.0.34.1", "a")
	register(t, lb, a.target)
	waitState(t, lb, a.target, alb.StateHealthy)
	l := dialLine(t, lb)
	if _, err := l.say("hello"); err != nil {
		t.Fatal(err)
	}
	waitRecord(t, recs, "idle timeout", closedWith(EndIdleTimeout, a.target.String()))
	if got, err := l.say("late"); !isReset(err) {
		t.Fatalf("sending on an expired flow: %q %v, want a reset", got, err)
	}
}

func TestFailOpenWhenNoTargetIsHealthy(t *testing.T) {
	recs := &testutil.Records{}
	cfg := testConfig(recs)
	cfg.HealthCheck.Protocol, cfg.HealthCheck.Path = ProtocolHTTP, "/health"
	lb := newLB(t, cfg)
	a, b := startWeb(t, "127.0.35.1", "a"), startWeb(t, "127.0.35.2", "b")
	a.health.Store(500)
	b.health.Store(503)
	register(t, lb, a.target, b.target)
	waitState(t, lb, a.target, alb.StateUnhealthy)
	waitState(t, lb, b.target, alb.StateUnhealthy)
	served := map[string]int{}
	each := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 20 {
		resp, err := each.Get("http://" + lb.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		served[resp.Header.Get("X-Served-By")]++
	}
	if len(served) != 2 {
		t.Fatalf("all unhealthy: served by %v, want both (fail-open)", served)
	}
	for _, r := range flowEvents(recs, ReasonFlowOpened) {
		if r.Attrs["fail_open"] != "true" || r.Attrs["target_state"] != string(alb.StateUnhealthy) {
			t.Fatalf("fail-open flow recorded as %v", r.Attrs)
		}
	}
	a.health.Store(302) // a redirect passes the default 200-399
	waitState(t, lb, a.target, alb.StateHealthy)
	for range 20 {
		resp, err := each.Get("http://" + lb.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if by := resp.Header.Get("X-Served-By"); by != "a" {
			t.Fatalf("one healthy target: served by %s", by)
		}
	}
}

func TestUnhealthyTargetsConnectionsAreReset(t *testing.T) {
	for _, termination := range []bool{true, false} {
		t.Run(fmt.Sprint("termination=", termination), func(t *testing.T) {
			recs := &testutil.Records{}
			lb, a, b := twoHealthy(t, testConfig(recs), "127.0.36")
			// Set after start: the attribute, as ModifyTargetGroupAttributes
			// changes it, decides.
			attrs := lb.Attributes()
			attrs.UnhealthyConnectionTermination = termination
			if err := lb.SetAttributes(attrs); err != nil {
				t.Fatal(err)
			}
			echos := map[string]*echo{"a": a, "b": b}
			l := dialLine(t, lb)
			got, err := l.say("hello")
			if err != nil {
				t.Fatal(err)
			}
			sick := echos[servedBy(got)]
			sick.ln.Close() // TCP checks fail; the accepted connection lives on
			waitState(t, lb, sick.target, alb.StateUnhealthy)
			got, err = l.say("again")
			if termination != isReset(err) {
				t.Fatalf("termination %v: after the target turned unhealthy %q %v", termination, got, err)
			}
		})
	}
}

func TestRefusedOrMissingTargetResetsTheClient(t *testing.T) {
	recs := &testutil.Records{}
	lb := newLB(t, testConfig(recs))
	if got, err := sayOnce(t, lb, "anyone"); !isReset(err) {
		t.Fatalf("no target: %q %v, want a reset", got, err)
	}
	waitRecord(t, recs, "no_target flow", closedWith(EndNoTarget, ""))

	ln, gone := listen(t, "127.0.37.1")
	ln.Close()
	register(t, lb, gone)
	waitState(t, lb, gone, alb.StateUnhealthy)
	if got, err := sayOnce(t, lb, "anyone"); !isReset(err) {
		t.Fatalf("refusing target: %q %v, want a reset", got, err)
	}
	waitRecord(t, recs, "target_refused flow", closedWith(EndTargetRefused, gone.String()))
	opened := flowEvents(recs, ReasonFlowOpened)
	if len(opened) != 1 || opened[0].Object != gone.String() || opened[0].Attrs["fail_open"] != "true" {
		t.Fatalf("opened flows %+v, want the refused one, fail-open", opened)
	}
}

func TestASinkErrorIsKept(t *testing.T) {
	cfg := testConfig(nil)
	cfg.Sink = func(*timeline.Record) error { return io.ErrShortWrite }
	lb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := startEcho(t, "127.0.41.1", "a")
	register(t, lb, a.target)
	if err := lb.Err(); err != io.ErrShortWrite {
		t.Fatalf("Err = %v after a failed record", err)
	}
	if err := lb.Close(); err != io.ErrShortWrite {
		t.Fatalf("Close = %v, want the sink's error", err)
	}
}

func TestTargetHealthTransitionsAreRecorded(t *testing.T) {
	recs := &testutil.Records{}
	cfg := testConfig(recs)
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationDelay, cfg.DeregistrationPropagation = 0, 0
	lb := newLB(t, cfg)
	a := startEcho(t, "127.0.38.1", "a")
	register(t, lb, a.target)
	waitState(t, lb, a.target, alb.StateHealthy)
	a.ln.Close()
	waitState(t, lb, a.target, alb.StateUnhealthy)
	deregister(t, lb, a.target)
	waitState(t, lb, a.target, alb.StateUnused)
	var got []string
	for _, r := range recs.All() {
		if r.Kind == timeline.KindTarget {
			if r.Source != "lab" || r.Object != a.target.String() || r.Attrs["target_group"] != cfg.Name {
				t.Fatalf("target record %+v", r)
			}
			got = append(got, r.State+" "+r.Reason)
		}
	}
	want := []string{
		"initial " + alb.ReasonRegistrationInProgress,
		"initial " + alb.ReasonInitialHealthChecking,
		"healthy ",
		"unhealthy " + alb.ReasonFailedHealthChecks,
		"draining " + alb.ReasonDeregistrationInProgress,
		"unused " + alb.ReasonNotRegistered,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("transitions\n got %q\nwant %q", got, want)
	}
}

func TestConfigIsValidatedAndScaled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "10.0.0.1:0"
	cfg.HealthCheck.Protocol, cfg.HealthCheck.Matcher = ProtocolHTTP, "600"
	cfg.TargetType = "alb"
	_, err := New(cfg)
	for _, want := range []string{"Listen", "Matcher", "TargetType"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v should name %s", err, want)
		}
	}
	lb := newLB(t, testConfig(&testutil.Records{}))
	if err := lb.Register(alb.Target{IP: "10.1.2.3", Port: 80}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback target: %v", err)
	}
	s := DefaultConfig().Scaled(0.01)
	if s.DeregistrationPropagation != 1200*time.Millisecond || s.IdleTimeout != 3500*time.Millisecond ||
		s.DeregistrationDelay != 3*time.Second || s.HealthCheck.Interval != 300*time.Millisecond {
		t.Fatalf("Scaled(0.01) = %+v", s)
	}
}

func TestUnreachableTargetLeavesTheClientWithoutAnswer(t *testing.T) {
	recs := &testutil.Records{}
	cfg := testConfig(recs)
	cfg.HealthCheck.Timeout = 20 * time.Millisecond
	lb := newLB(t, cfg)
	a := startEcho(t, "127.0.40.1", "a")
	register(t, lb, a.target)
	waitState(t, lb, a.target, alb.StateHealthy)
	if err := lb.SetReachable(a.target.IP, false); err != nil {
		t.Fatal(err)
	}
	l := dialLine(t, lb)
	fmt.Fprintln(l.c, "anyone")
	l.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) // the client's own timeout
	var ne net.Error
	if _, err := l.r.ReadString('\n'); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("unreachable target: %v, want the client's own timeout", err)
	}
	l.c.Close()
	waitRecord(t, recs, "unreachable flow", closedWith(EndUnreachable, a.target.String()))
	waitState(t, lb, a.target, alb.StateUnhealthy) // its checks time out
	if err := lb.SetReachable(a.target.IP, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, lb, a.target, alb.StateHealthy)
	if got, err := dialLine(t, lb).say("back"); err != nil || got != "a back" {
		t.Fatalf("reachable again: %q %v", got, err)
	}
	if err := lb.SetReachable("10.0.0.1", false); err == nil {
		t.Fatal("a non-loopback IP was accepted")
	}
}
