package alb

import (
	"github.com/rollsafe/rollsafe/internal/testutil"

	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/lab/labtest"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// backend is a real HTTP server on its own loopback address, like a pod.
type backend struct {
	addr   string
	target Target
	srv    *http.Server
	health atomic.Int32 // status /health answers
	hits   atomic.Int64
	block  chan struct{} // /slow waits on it
	closed chan struct{} // a connection closed (ConnState)
	once   sync.Once
}

// startBackends starts one backend per IP, all on the same port, like pods
// of one Deployment.
func startBackends(t *testing.T, ips ...string) []*backend {
	t.Helper()
	return startBackendsIdle(t, 0, ips...)
}

// startBackendsIdle is startBackends with the app's keep-alive idle timeout.
func startBackendsIdle(t *testing.T, idle time.Duration, ips ...string) []*backend {
	t.Helper()
	var out []*backend
	port := 0
	for _, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("listen %s:%d: %v", ip, port, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		b := &backend{addr: ln.Addr().String(), target: Target{IP: ip, Port: port},
			block: make(chan struct{}), closed: make(chan struct{}, 1000)}
		b.health.Store(200)
		b.srv = &http.Server{Handler: b, IdleTimeout: idle, ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				select {
				case b.closed <- struct{}{}:
				default:
				}
			}
		}}
		go b.srv.Serve(ln)
		t.Cleanup(b.stop)
		out = append(out, b)
	}
	return out
}

func (b *backend) stop() {
	b.once.Do(func() { close(b.block) })
	b.srv.Close()
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		w.WriteHeader(int(b.health.Load()))
		return
	case "/slow":
		b.hits.Add(1)
		w.Header().Set("X-Served-By", b.addr)
		select {
		case <-b.block:
		case <-r.Context().Done():
		}
		return
	}
	b.hits.Add(1)
	w.Header().Set("X-Served-By", b.addr)
	w.Header().Set("X-Trace-Seen", r.Header.Get("X-Amzn-Trace-Id"))
	io.WriteString(w, "ok "+b.addr)
}

// recorder collects what the LB reports.
type recorder struct {
	mu   sync.Mutex
	recs []*timeline.Record
	reqs []RequestInfo
}

func (r *recorder) sink(rec *timeline.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}

func (r *recorder) onRequest(ri *RequestInfo) {
	r.mu.Lock()
	r.reqs = append(r.reqs, *ri)
	r.mu.Unlock()
}

func (r *recorder) requests() []RequestInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RequestInfo(nil), r.reqs...)
}

func (r *recorder) records() []*timeline.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*timeline.Record(nil), r.recs...)
}

// testConfig is a fast LB: short health checks, one node, no propagation.
func testConfig(rec *recorder, log io.Writer) Config {
	cfg := DefaultConfig()
	cfg.HealthCheck.Path = "/health"
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.Timeout = time.Second
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.HealthCheck.UnhealthyThreshold = 2
	cfg.Nodes = 1
	cfg.Propagation = 0
	cfg.TargetTimeout = 10 * time.Second
	if rec != nil {
		cfg.Sink = rec.sink
		cfg.OnRequest = rec.onRequest
	}
	cfg.AccessLog = log
	return cfg
}

// newLB is an LB closed when the test ends.
// recorded is base's config reporting to a fresh recorder and writing its
// access log to a fresh buffer, returned with both.
func recorded(base func(*recorder, io.Writer) Config) (Config, *recorder, *testutil.SyncBuffer) {
	rec, log := &recorder{}, &testutil.SyncBuffer{}
	return base(rec, log), rec, log
}

func newLB(t *testing.T, cfg Config) *LB {
	t.Helper()
	return labtest.Start(t, New, cfg)
}

// registerHealthy registers the backends and waits until each is healthy.
func registerHealthy(t *testing.T, lb *LB, bs ...*backend) {
	t.Helper()
	var ts []Target
	for _, b := range bs {
		ts = append(ts, b.target)
	}
	if err := lb.Register(ts...); err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		waitState(t, lb, tg, StateHealthy)
	}
}

// healthyBehind starts one backend per IP behind an LB of that many nodes,
// reporting to a recorder, and waits until every backend is healthy.
func healthyBehind(t *testing.T, nodes int, ips ...string) (*LB, *recorder, []*backend) {
	t.Helper()
	bs := startBackends(t, ips...)
	rec := &recorder{}
	cfg := testConfig(rec, nil)
	cfg.Nodes = nodes
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs...)
	return lb, rec, bs
}

// waitState polls until target tg has state want; a generous bound keeps
// the test about behaviour, not speed.
func waitState(t *testing.T, lb *LB, tg Target, want State) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if lb.HealthOf(tg).State == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("target %s: state %s, want %s", tg, lb.HealthOf(tg).State, want)
}

// get sends one request on a new connection (each lands on the next LB node).
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// statuses sends n requests to / and counts them by status code.
func statuses(t *testing.T, lb *LB, n int) map[int]int {
	t.Helper()
	got := map[int]int{}
	for range n {
		code, _, _ := get(t, lb.URL()+"/")
		got[code]++
	}
	return got
}

// logEntries parses every access-log line, failing on any malformed one.
func logEntries(t *testing.T, lb *LB, log *testutil.SyncBuffer) []accesslog.Entry {
	t.Helper()
	if err := lb.FlushAccessLog(); err != nil {
		t.Fatal(err)
	}
	var out []accesslog.Entry
	for i, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		if line == "" {
			continue
		}
		e, err := accesslog.Parse([]byte(line))
		if err != nil {
			t.Fatalf("access log line %d %q: %v", i+1, line, err)
		}
		out = append(out, e.Clone())
	}
	return out
}

func lastRequest(t *testing.T, rec *recorder) RequestInfo {
	t.Helper()
	rs := rec.requests()
	if len(rs) == 0 {
		t.Fatal("no request reported")
	}
	return rs[len(rs)-1]
}
