package alb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab/labtest"
	"github.com/rollsafe/rollsafe/timeline"
)

func TestRoundRobinOverHealthyTargets(t *testing.T) {
	lb, rec, bs := healthyBehind(t, 1, "127.0.0.1", "127.0.0.2")
	if got := statuses(t, lb, 20); got[200] != 20 {
		t.Fatalf("statuses %v, want 20 200s", got)
	}
	if a, b := bs[0].hits.Load(), bs[1].hits.Load(); a != 10 || b != 10 {
		t.Fatalf("round robin split %d/%d, want 10/10", a, b)
	}
	for _, ri := range rec.requests() {
		if ri.FailOpen || ri.TargetState != StateHealthy || ri.Cause != "" {
			t.Fatalf("unexpected request info %+v", ri)
		}
	}
}

func TestTargetStateMachine(t *testing.T) {
	b := startBackends(t, "127.0.0.3")[0]
	rec := &recorder{}
	lb := newLB(t, testConfig(rec, nil))
	b.health.Store(500)
	lb.Register(b.target)
	if th := lb.HealthOf(b.target); th.State != StateInitial {
		t.Fatalf("just registered: %+v", th)
	}
	waitState(t, lb, b.target, StateUnhealthy)
	if th := lb.HealthOf(b.target); th.Reason != ReasonResponseCodeMismatch || !strings.Contains(th.Description, "500") {
		t.Fatalf("unhealthy: %+v", th)
	}
	b.health.Store(200)
	waitState(t, lb, b.target, StateHealthy)
	b.srv.Close() // the process is gone: connection refused
	waitState(t, lb, b.target, StateUnhealthy)
	if th := lb.HealthOf(b.target); th.Reason != ReasonFailedHealthChecks {
		t.Fatalf("refused: %+v", th)
	}
	lb.SetAttributes(Attributes{DeregistrationDelay: 10 * time.Millisecond})
	lb.Deregister(b.target)
	waitState(t, lb, b.target, StateUnused)
	if th := lb.HealthOf(b.target); th.Reason != ReasonNotRegistered {
		t.Fatalf("unused: %+v", th)
	}
	var states []string
	for _, r := range rec.records() {
		if r.Kind == timeline.KindTarget {
			if r.Object != b.target.String() || r.Source != "lab" {
				t.Fatalf("bad record %+v", r)
			}
			if len(states) == 0 || states[len(states)-1] != r.State {
				states = append(states, r.State)
			}
		}
	}
	want := "initial unhealthy healthy unhealthy draining unused"
	if got := strings.Join(states, " "); got != want {
		t.Fatalf("state sequence %q, want %q", got, want)
	}
}

func TestHealthCheckTimeoutAndMatcherRange(t *testing.T) {
	bs := startBackends(t, "127.0.0.4")
	cfg := testConfig(nil, nil)
	cfg.HealthCheck.Path = "/slow" // never answers
	cfg.HealthCheck.Timeout = 30 * time.Millisecond
	lb := newLB(t, cfg)
	lb.Register(bs[0].target)
	waitState(t, lb, bs[0].target, StateUnhealthy)
	if th := lb.HealthOf(bs[0].target); th.Reason != ReasonTimeout {
		t.Fatalf("%+v", th)
	}

	bs2 := startBackends(t, "127.0.0.5")
	bs2[0].health.Store(204)
	cfg = testConfig(nil, nil)
	cfg.HealthCheck.Matcher = "200-204,302"
	lb2 := newLB(t, cfg)
	lb2.Register(bs2[0].target)
	waitState(t, lb2, bs2[0].target, StateHealthy)
}

func TestNoRegisteredTarget503(t *testing.T) {
	cfg, rec, log := recorded(testConfig)
	lb := newLB(t, cfg)
	code, body, hdr := get(t, lb.URL()+"/x?y=1")
	if code != 503 || !strings.Contains(body, "503 Service Temporarily Unavailable") && !strings.Contains(body, "503 Service Unavailable") || hdr.Get("Server") != "awselb/2.0" {
		t.Fatalf("got %d %q %v", code, body, hdr)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrNoTarget || ri.Cause != timeline.CauseNoRegisteredTarget || ri.Target != "" {
		t.Fatalf("%+v", ri)
	}
	es := logEntries(t, lb, log)
	if len(es) != 1 {
		t.Fatalf("%d log lines", len(es))
	}
	e := es[0]
	if e.ELBStatusCode != 503 || e.TargetStatusCode != 0 || e.Target != nil || e.RequestProcessingTime >= 0 ||
		!strings.HasPrefix(string(e.Request), "GET http://") || !strings.HasSuffix(string(e.Request), "/x?y=1 HTTP/1.1") ||
		string(e.TraceID) != ri.TraceID || !strings.HasPrefix(ri.TraceID, "Root=1-") {
		t.Fatalf("log entry %s", e.String())
	}
}

func TestFailOpenRoutesToUnhealthyTargets(t *testing.T) {
	bs := startBackends(t, "127.0.0.6", "127.0.0.7")
	cfg, rec, log := recorded(testConfig)
	lb := newLB(t, cfg)
	for _, b := range bs {
		b.health.Store(503) // health checks fail, traffic would be served
	}
	lb.Register(bs[0].target, bs[1].target)
	waitState(t, lb, bs[0].target, StateUnhealthy)
	waitState(t, lb, bs[1].target, StateUnhealthy)
	if got := statuses(t, lb, 4); got[200] != 4 {
		t.Fatalf("fail-open requests: statuses %v, want 4 200s", got)
	}
	if bs[0].hits.Load() != 2 || bs[1].hits.Load() != 2 {
		t.Fatalf("fail-open should spread over all registered targets: %d/%d", bs[0].hits.Load(), bs[1].hits.Load())
	}
	// One target's process is gone: fail-open still routes to it -> 502.
	bs[1].stop()
	if failed := statuses(t, lb, 4)[502]; failed != 2 {
		t.Fatalf("%d of 4 failed, want 2", failed)
	}
	for _, ri := range rec.requests() {
		if !ri.FailOpen || ri.TargetState != StateUnhealthy {
			t.Fatalf("%+v", ri)
		}
		// The exited process shows as a reused connection found closed, then a refused dial.
		if ri.ELBStatus == 502 && (ri.Cause != timeline.CauseNoHealthyTarget || ri.Err != ErrDialRefused && ri.Err != ErrReusedConnClosed) {
			t.Fatalf("%+v", ri)
		}
	}
	// The access log shows it: requests forwarded to unhealthy targets.
	es := logEntries(t, lb, log)
	if len(es) != 8 {
		t.Fatalf("%d log lines", len(es))
	}
	for i, e := range es {
		if string(e.Target) != bs[i%2].target.String() && string(e.Target) != bs[(i+1)%2].target.String() {
			t.Fatalf("line %d: target %q", i, e.Target)
		}
		if e.ELBStatusCode == 502 && (e.TargetStatusCode != 0 || e.TargetProcessingTime >= 0) {
			t.Fatalf("502 line: %s", e.String())
		}
	}
}

func TestDrainingTargetGetsRequestsUntilNodeLearns(t *testing.T) {
	lb, rec, bs := healthyBehind(t, 2, "127.0.0.8", "127.0.0.9")
	// Deregistration that no node will learn of during the test.
	lb.SetPropagation(time.Hour)
	lb.Deregister(bs[0].target)
	if th := lb.HealthOf(bs[0].target); th.State != StateDraining || th.Reason != ReasonDeregistrationInProgress {
		t.Fatalf("%+v", th)
	}
	bs[0].stop() // the pod exited fast
	if refused := statuses(t, lb, 8)[502]; refused != 4 {
		t.Fatalf("%d of 8 requests hit the exited draining target, want 4", refused)
	}
	for _, ri := range rec.requests() {
		if ri.ELBStatus == 502 && (ri.TargetState != StateDraining || ri.Cause != timeline.CauseDrainingTargetExited) {
			t.Fatalf("%+v", ri)
		}
	}
}

func TestNodesStopRoutingOnceTheyLearn(t *testing.T) {
	lb, rec, bs := healthyBehind(t, 3, "127.0.0.10", "127.0.0.11")
	lb.SetPropagation(50 * time.Millisecond)
	lb.Deregister(bs[0].target)
	learned := func() int {
		n := 0
		for _, r := range rec.records() {
			if r.Kind == timeline.KindEvent && r.Reason == "alb.NodeLearnedDeregistration" && r.Object == bs[0].target.String() {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); learned() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if learned() != 3 {
		t.Fatalf("%d nodes learned", learned())
	}
	before := bs[0].hits.Load()
	if got := statuses(t, lb, 9); got[200] != 9 {
		t.Fatalf("statuses %v, want 9 200s", got)
	}
	if bs[0].hits.Load() != before {
		t.Fatal("a node still routed to the deregistered target after learning")
	}
}

func TestDeregistrationDelayCutsInFlight(t *testing.T) {
	bs := startBackends(t, "127.0.0.12")
	rec := &recorder{}
	cfg := testConfig(rec, nil)
	cfg.DeregistrationDelay = 100 * time.Millisecond
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs[0])
	done := make(chan int)
	go func() {
		resp, err := http.Get(lb.URL() + "/slow")
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for bs[0].hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	lb.Deregister(bs[0].target)
	if code := <-done; code != 502 {
		t.Fatalf("in-flight request got %d, want 502", code)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrDeregistrationCut || ri.Cause != timeline.CauseDeregistrationCut {
		t.Fatalf("%+v", ri)
	}
	waitState(t, lb, bs[0].target, StateUnused)
}

// rawKeepAliveBackend answers the first request on a connection with
// keep-alive, then closes the connection as soon as the next request's
// bytes arrive, without answering: the target-side half of the race.
func rawKeepAliveBackend(t *testing.T, ip string) (Target, *int32, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	conns := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				br.Peek(1) // the next request arrives ... and the app closes
			}()
		}
	}()
	p := ln.Addr().(*net.TCPAddr).Port
	return Target{IP: ip, Port: p}, nil, func() int { mu.Lock(); defer mu.Unlock(); return conns }
}

func TestKeepAliveRaceIs502WithoutRetry(t *testing.T) {
	tg, _, conns := rawKeepAliveBackend(t, "127.0.0.13")
	health := startBackends(t, "127.0.0.13") // health checks on their own port
	rec := &recorder{}
	cfg := testConfig(rec, nil)
	cfg.HealthCheck.Port = health[0].target.Port
	lb := newLB(t, cfg)
	lb.Register(tg)
	waitState(t, lb, tg, StateHealthy)

	if code, body, _ := get(t, lb.URL()+"/"); code != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", code, body)
	}
	// GET is idempotent: Go's http.Transport would silently retry it on a
	// new connection. The ALB does not, and neither may we.
	code, _, _ := get(t, lb.URL()+"/")
	if code != 502 {
		t.Fatalf("request on the closed keep-alive connection: %d, want 502", code)
	}
	ri := lastRequest(t, rec)
	if !ri.Reused || ri.Err != ErrReusedConnClosed || ri.Cause != timeline.CauseKeepAliveRace {
		t.Fatalf("%+v", ri)
	}
	if n := conns(); n != 1 {
		t.Fatalf("backend saw %d connections: the request was retried", n)
	}
	// The dead connection was dropped: the next request dials afresh.
	if code, _, _ := get(t, lb.URL()+"/"); code != 200 {
		t.Fatalf("after the race: %d", code)
	}
}

func TestAppIdleTimeoutShorterThanLBs(t *testing.T) {
	// The app closes idle keep-alive connections before the LB does.
	b := startBackendsIdle(t, 30*time.Millisecond, "127.0.0.14")[0]
	rec := &recorder{}
	cfg := testConfig(rec, nil)
	cfg.HealthCheck.Interval = time.Hour // only the first check: keep ConnState quiet
	cfg.HealthCheck.HealthyThreshold = 1
	lb := newLB(t, cfg)
	registerHealthy(t, lb, b)
	<-b.closed // the health check's connection
	if code, _, _ := get(t, lb.URL()+"/"); code != 200 {
		t.Fatalf("first: %d", code)
	}
	<-b.closed // the app closed the LB's idle keep-alive connection
	code, _, _ := get(t, lb.URL()+"/")
	if code != 502 {
		t.Fatalf("got %d, want 502 from the keep-alive race", code)
	}
	if ri := lastRequest(t, rec); ri.Cause != timeline.CauseKeepAliveRace {
		t.Fatalf("%+v", ri)
	}
}

func TestLBClosesIdleBackendConnsFirst(t *testing.T) {
	bs := startBackends(t, "127.0.0.15")
	cfg := testConfig(nil, nil)
	cfg.HealthCheck.Interval = time.Hour
	cfg.HealthCheck.HealthyThreshold = 1
	cfg.BackendIdleTimeout = 50 * time.Millisecond
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs[0])
	<-bs[0].closed
	if code, _, _ := get(t, lb.URL()+"/"); code != 200 {
		t.Fatal(code)
	}
	<-bs[0].closed // the LB's idle timeout closed its keep-alive connection
	if code, _, _ := get(t, lb.URL()+"/"); code != 200 {
		t.Fatalf("after the LB's own idle close: %d", code)
	}
}

func TestTargetTimeoutIs504(t *testing.T) {
	bs := startBackends(t, "127.0.0.16")
	cfg, rec, log := recorded(testConfig)
	cfg.TargetTimeout = 50 * time.Millisecond
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs[0])
	if code, _, _ := get(t, lb.URL()+"/slow"); code != 504 {
		t.Fatalf("got %d, want 504", code)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrTimeout || ri.Cause != timeline.CauseTargetTimeout || ri.TargetStatus != 0 {
		t.Fatalf("%+v", ri)
	}
	es := logEntries(t, lb, log)
	e := es[len(es)-1]
	if e.ELBStatusCode != 504 || string(e.Target) != bs[0].target.String() || e.TargetProcessingTime >= 0 {
		t.Fatalf("%s", e.String())
	}
}

func TestClientIdleTimeoutClosesConnection(t *testing.T) {
	cfg := testConfig(nil, nil)
	cfg.ClientIdleTimeout = 50 * time.Millisecond
	lb := newLB(t, cfg)
	c := labtest.Dial(t, lb.Addr())
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle client connection: %v, want EOF (closed by the LB)", err)
	}
}

func TestTraceIDAndForwardedHeaders(t *testing.T) {
	bs := startBackends(t, "127.0.0.17")
	log := &testutil.SyncBuffer{}
	lb := newLB(t, testConfig(nil, log))
	registerHealthy(t, lb, bs[0])
	req, _ := http.NewRequest("GET", lb.URL()+"/", nil)
	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793"
	req.Header.Set("X-Amzn-Trace-Id", trace)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Trace-Seen"); got != trace {
		t.Fatalf("target saw trace %q", got)
	}
	es := logEntries(t, lb, log)
	e := es[len(es)-1]
	if string(e.TraceID) != trace || e.ELBStatusCode != 200 || e.TargetStatusCode != 200 || e.TargetProcessingTime < 0 ||
		string(e.TargetGroupARN) != lb.TargetGroupARN() || string(e.TargetStatusCodeList) != "200" {
		t.Fatalf("%s", e.String())
	}
}

func TestBadInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "10.0.0.1:80"
	cfg.HealthCheck.Matcher = "200-199"
	cfg.Nodes = 0
	_, err := New(cfg)
	for _, want := range []string{"Listen", "Matcher", "Nodes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v should name %s", err, want)
		}
	}
	lb := newLB(t, testConfig(nil, nil))
	if err := lb.Register(Target{IP: "10.1.2.3", Port: 80}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback target: %v", err)
	}
	cfg = testConfig(nil, nil)
	cfg.Listen = lb.Addr()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), lb.Addr()) {
		t.Fatalf("port in use: %v", err)
	}
}

func TestMatcher(t *testing.T) {
	m, err := parseMatcher("200,202-204, 302")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{200: true, 201: false, 203: true, 302: true, 500: false} {
		if m.Match(code) != want {
			t.Errorf("match(%d) = %v", code, !want)
		}
	}
	for _, bad := range []string{"", "abc", "100", "200-", "600", "300-200"} {
		if _, err := parseMatcher(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
