package nlb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/labtest"
	"github.com/rollsafe/rollsafe/timeline"
)

// echo is a real TCP server on its own loopback address, like a pod: it
// answers every line with "<name> <line>". Closing its listener fails TCP
// health checks while the connections it accepted go on.
type echo struct {
	name   string
	ln     net.Listener
	target alb.Target
}

// listen opens a listener on a free port of ip and names it as a target.
func listen(t *testing.T, ip string) (net.Listener, alb.Target) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	return ln, alb.Target{IP: ip, Port: ln.Addr().(*net.TCPAddr).Port}
}

func startEcho(t *testing.T, ip, name string) *echo {
	t.Helper()
	ln, target := listen(t, ip)
	e := &echo{name: name, ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

func (e *echo) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%s %s", e.name, line)
	}
}

// web is a real HTTP server on its own loopback address: / answers with
// X-Served-By, /health with the status in health.
type web struct {
	name   string
	target alb.Target
	health atomic.Int32
}

func startWeb(t *testing.T, ip, name string) *web {
	t.Helper()
	ln, target := listen(t, ip)
	w := &web{name: name, target: target}
	w.health.Store(200)
	srv := &http.Server{Handler: w}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return w
}

func (w *web) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		rw.WriteHeader(int(w.health.Load()))
		return
	}
	rw.Header().Set("X-Served-By", w.name)
	fmt.Fprint(rw, w.name)
}

// testConfig is DefaultConfig with health checks fast enough for tests and
// every slow behaviour out of the way until a test sets it.
func testConfig(recs *testutil.Records) Config {
	cfg := DefaultConfig()
	cfg.HealthCheck.Interval = 10 * time.Millisecond
	cfg.HealthCheck.Timeout = time.Second
	cfg.HealthCheck.HealthyThreshold, cfg.HealthCheck.UnhealthyThreshold = 1, 1
	cfg.DeregistrationDelay = time.Hour
	cfg.DeregistrationPropagation = time.Hour
	cfg.IdleTimeout = time.Hour
	if recs != nil {
		cfg.Sink = recs.Add
	}
	return cfg
}

// newLB is an LB closed when the test ends.
func newLB(t *testing.T, cfg Config) *LB {
	t.Helper()
	return labtest.Start(t, New, cfg)
}

// waitFor polls cond; the bound only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func waitState(t *testing.T, lb *LB, tg alb.Target, want alb.State) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s %s", tg, want), func() bool { return lb.HealthOf(tg).State == want })
}

func register(t *testing.T, lb *LB, ts ...alb.Target) {
	t.Helper()
	if err := lb.Register(ts...); err != nil {
		t.Fatal(err)
	}
}

func deregister(t *testing.T, lb *LB, ts ...alb.Target) {
	t.Helper()
	if err := lb.Deregister(ts...); err != nil {
		t.Fatal(err)
	}
}

// waitRecord waits for a record matching keep and returns it.
func waitRecord(t *testing.T, recs *testutil.Records, what string, keep func(timeline.Record) bool) timeline.Record {
	t.Helper()
	var found timeline.Record
	waitFor(t, what, func() bool {
		for _, r := range recs.All() {
			if keep(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func flowEvents(recs *testutil.Records, reason string) []timeline.Record {
	var out []timeline.Record
	for _, r := range recs.All() {
		if r.Kind == timeline.KindEvent && r.Reason == reason {
			out = append(out, r)
		}
	}
	return out
}

func closedWith(end, object string) func(timeline.Record) bool {
	return func(r timeline.Record) bool {
		return r.Reason == ReasonFlowClosed && r.Attrs["end"] == end && (object == "" || r.Object == object)
	}
}

// line is one client connection through the LB speaking echo's protocol.
type line struct {
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, lb *LB) *line {
	t.Helper()
	c := labtest.Dial(t, lb.Addr())
	return &line{c: c, r: bufio.NewReader(c)}
}

// sayOnce opens a connection, sends msg and returns the answer or the
// first error, the connect's included: a reset can come before the
// client's connect has returned.
func sayOnce(t *testing.T, lb *LB, msg string) (string, error) {
	c, err := net.Dial("tcp", lb.Addr())
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { c.Close() })
	l := &line{c: c, r: bufio.NewReader(c)}
	return l.say(msg)
}

// say sends msg and returns the answer (or the error reading it).
func (l *line) say(msg string) (string, error) {
	if _, err := fmt.Fprintf(l.c, "%s\n", msg); err != nil {
		return "", err
	}
	l.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := l.r.ReadString('\n')
	return strings.TrimSpace(s), err
}

// servedBy is the echo server's name in an answer.
func servedBy(answer string) string {
	name, _, _ := strings.Cut(answer, " ")
	return name
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// fresh opens one new connection per call and returns who answered.
func fresh(t *testing.T, lb *LB, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		l := dialLine(t, lb)
		a, err := l.say(fmt.Sprint("hello ", i))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		got[servedBy(a)]++
		l.c.Close()
	}
	return got
}
