package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/rollsafe/rollsafe/timeline"
)

// One worker, a raw server failing in planned ways: every class is exact,
// per request. Resets and EOFs land on reused keep-alive connections (the
// request before each keeps its connection), so a transparent retry would
// shift the server's count and break every later expectation.
func TestFaultClassesExact(t *testing.T) { bothPaths(t, testFaultClassesExact) }

func testFaultClassesExact(t *testing.T) {
	plan := make([]action, 30)
	want := map[int]timeline.Class{}
	for _, i := range []int{3, 7, 11} {
		plan[i], want[i] = actReset, timeline.ClassConnReset
	}
	for _, i := range []int{1, 2, 5, 20} {
		plan[i], want[i] = act502, timeline.ClassHTTP502
	}
	for _, i := range []int{9, 15} {
		plan[i], want[i] = actSlow, timeline.ClassTimeout
	}
	for _, i := range []int{13, 25} {
		plan[i], want[i] = actEOF, timeline.ClassEOF
	}
	srv := newFaultServer(t, plan)
	srv.slow = time.Second
	sum, recs := run(t, Config{URL: srv.url(), Rate: 200, Connections: 1, Requests: 30, Timeout: 200 * time.Millisecond})
	wantCounts(t, sum, 30-11, map[timeline.Class]uint64{
		timeline.ClassConnReset: 3, timeline.ClassHTTP502: 4, timeline.ClassTimeout: 2, timeline.ClassEOF: 2})
	for i := range 30 {
		r := recs[uint64(i+1)]
		w, ok := want[i]
		if !ok {
			w = timeline.ClassOK
		}
		if r == nil || r.Class != w {
			t.Errorf("request %d: got %+v, want class %s", i+1, r, w)
		}
	}
	if got := srv.n.Load(); got != 30 {
		t.Errorf("server saw %d requests, want 30 (a retry would add some)", got)
	}
	if r := recs[1]; r.Replica != "pod-a" || r.Status != 200 || r.Bytes != 2 {
		t.Errorf("first record: %+v", r)
	}
}

// The keep-alive race: the server closes a kept-alive connection just as
// the next request arrives on it. The probe must see every one of those
// (what a client with one attempt, like the ALB towards its targets, sees);
// Go's own client retries them on a new connection and sees nothing.
func TestKeepAliveRaceIsNotRetried(t *testing.T) { bothPaths(t, testKeepAliveRaceIsNotRetried) }

func testKeepAliveRaceIsNotRetried(t *testing.T) {
	srv := newFaultServer(t, nil)
	srv.closeReused = true
	sum, recs := run(t, Config{URL: srv.url(), Rate: 200, Connections: 1, Requests: 20})
	wantCounts(t, sum, 10, map[timeline.Class]uint64{timeline.ClassEOF: 10})
	for seq := uint64(1); seq <= 20; seq++ {
		want := timeline.ClassOK
		if seq%2 == 0 {
			want = timeline.ClassEOF
		}
		if recs[seq].Class != want {
			t.Errorf("seq %d: class %s, want %s (%s)", seq, recs[seq].Class, want, recs[seq].Error)
		}
	}

	// The same server through a stock client: the races vanish in retries.
	srv2 := newFaultServer(t, nil)
	srv2.closeReused = true
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	var errs int
	for range 20 {
		resp, err := c.Get(srv2.url())
		if err != nil {
			errs++
			continue
		}
		resp.Body.Close()
	}
	if errs != 0 || srv2.conns.Load() < 20 {
		t.Logf("stock client: %d errors over %d connections", errs, srv2.conns.Load())
	} else {
		t.Logf("stock client hid all races: 0 errors, %d connections for 20 requests", srv2.conns.Load())
	}
}

func TestStatusClassesReplicaVersion(t *testing.T) {
	codes := []int{500, 502, 503, 504, 599, 404, 429, 200, 302, 200}
	srv := statusServer(t, codes)
	sum, recs := run(t, Config{URL: "http://" + srv.Addr + "/", Rate: 500, Connections: 1, Requests: 10,
		VersionRegex: regexp.MustCompile(`version=(\w+)`)})
	wantCounts(t, sum, 3, map[timeline.Class]uint64{
		timeline.ClassHTTP500: 1, timeline.ClassHTTP502: 1, timeline.ClassHTTP503: 1, timeline.ClassHTTP504: 1,
		timeline.ClassHTTP5xx: 1, timeline.ClassHTTP4xx: 2})
	for seq, code := range codes {
		r := recs[uint64(seq+1)]
		if r.Status != code || r.Class != timeline.ClassOfStatus(code) {
			t.Errorf("seq %d: status %d class %s, want %d", seq+1, r.Status, r.Class, code)
		}
		if r.Version != "v42" {
			t.Errorf("seq %d: version %q", seq+1, r.Version)
		}
		if want := "pod-" + string(rune('a'+seq%3)); r.Replica != want {
			t.Errorf("seq %d: replica %q, want %q", seq+1, r.Replica, want)
		}
	}
	if sum.Replicas["pod-a"] != 4 || sum.Versions["v42"] != 10 {
		t.Errorf("replicas %v versions %v", sum.Replicas, sum.Versions)
	}
}

func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, newConn := range []bool{false, true} {
		sum, _ := run(t, Config{URL: "http://" + addr + "/", Rate: 500, Connections: 2, Requests: 7, NewConn: newConn})
		wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassConnRefused: 7})
	}
}

// nxdomainServer is a real DNS server on loopback UDP answering NXDOMAIN to every query.
func nxdomainServer(t *testing.T) (*net.Resolver, *atomic.Int64) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var queries atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			qs, _ := p.AllQuestions()
			queries.Add(1)
			msg := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired,
				RecursionAvailable: true, RCode: dnsmessage.RCodeNameError}, Questions: qs}
			out, _ := msg.Pack()
			pc.WriteTo(out, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr) // only ever our loopback server
	}}, &queries
}

func TestDNS(t *testing.T) {
	// .invalid is answered at once, without asking anyone (RFC 6761).
	sum, recs := run(t, Config{URL: "http://rollsafe-probe.invalid/", Rate: 500, Requests: 3})
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassDNS: 3})
	if !strings.Contains(recs[1].Error, "rollsafe-probe.invalid") {
		t.Errorf("error does not name the host: %q", recs[1].Error)
	}
	// A real NXDOMAIN from a real (loopback) DNS server.
	res, queries := nxdomainServer(t)
	sum, _ = run(t, Config{URL: "http://nx.rollsafe.test:8080/", Rate: 500, Requests: 3, Resolver: res})
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassDNS: 3})
	if queries.Load() == 0 {
		t.Error("the DNS server was never asked")
	}
}

func TestTLS(t *testing.T) {
	plain := statusServer(t, nil)
	sum, _ := run(t, Config{URL: "https://" + plain.Addr + "/", Rate: 500, Requests: 3})
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassTLS: 3})

	var h2 atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	sum, recs := run(t, Config{URL: ts.URL, Rate: 500, Requests: 3}) // self-signed, not trusted
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassTLS: 3})
	if !strings.Contains(recs[1].Error, "certificate") {
		t.Errorf("tls error does not say why: %q", recs[1].Error)
	}
	sum, _ = run(t, Config{URL: ts.URL, Rate: 500, Requests: 3, Insecure: true})
	wantCounts(t, sum, 3, nil)
	if h2.Load() != 3 {
		t.Errorf("%d of 3 requests used h2", h2.Load())
	}
	sum, _ = run(t, Config{URL: ts.URL, Rate: 500, Requests: 3, Insecure: true, Protocol: ProtocolHTTP1})
	wantCounts(t, sum, 3, nil)
	if h2.Load() != 3 {
		t.Errorf("protocol 1.1 still used h2")
	}
	// A server that shakes hands and then hangs up (no ALPN on h1-only
	// server forced to h2): the handshake fails as tls.
	ts1 := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ts1.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	ts1.StartTLS()
	defer ts1.Close()
	sum, _ = run(t, Config{URL: ts1.URL, Rate: 500, Requests: 2, Insecure: true, Protocol: ProtocolHTTP2})
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassTLS: 2})
}

// Every request carries a unique AWS-format trace id, and the record holds
// exactly what the server received.
func TestTraceID(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bool{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get(TraceHeader)] = true
		mu.Unlock()
	}))
	defer ts.Close()
	_, recs := run(t, Config{URL: ts.URL, Rate: 1000, Connections: 3, Requests: 50})
	format := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`)
	for seq, r := range recs {
		if !format.MatchString(r.TraceID) || !got[r.TraceID] {
			t.Errorf("seq %d: trace id %q (format ok %v, server saw it %v)", seq, r.TraceID, format.MatchString(r.TraceID), got[r.TraceID])
		}
		if !strings.HasSuffix(r.TraceID, "0000000000000000"[:16-len(hex(seq))]+hex(seq)) {
			t.Errorf("seq %d: trace id %q does not end in the sequence", seq, r.TraceID)
		}
	}
	if len(got) != 50 {
		t.Errorf("server saw %d distinct trace ids, want 50", len(got))
	}
	// The user's own trace header wins and is recorded as sent.
	own := "Root=1-00000000-000000000000000000000001"
	_, recs = run(t, Config{URL: ts.URL, Rate: 1000, Requests: 2, Headers: http.Header{"x-amzn-trace-id": {own}}})
	if recs[1].TraceID != own || !got[own] {
		t.Errorf("user trace id: recorded %q, server saw it %v", recs[1].TraceID, got[own])
	}
}

func hex(v uint64) string {
	var b [16]byte
	putHex(b[:], v)
	return strings.TrimLeft(string(b[:]), "0")
}

// A server slower than the schedule: sends start late and are counted as
// late, and latency runs from the due time (no coordinated omission).
func TestOpenModelCountsLateSends(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(100 * time.Millisecond)
	}))
	defer ts.Close()
	sum, recs := run(t, Config{URL: ts.URL, Rate: 100, Connections: 1, Requests: 10})
	// Request k+1 is due at k*10 ms but cannot start before k*100 ms.
	if sum.Late != 9 {
		t.Errorf("late = %d, want 9", sum.Late)
	}
	if r := recs[10]; r.Latency < 910*time.Millisecond || r.Time.Sub(r.Scheduled) < 810*time.Millisecond {
		t.Errorf("last request: latency %v, started %v after due; both must include the queueing", r.Latency, r.Time.Sub(r.Scheduled))
	}
}

// Cancelling stops sending; requests in flight still finish and are recorded.
func TestInterruptFlushesInFlight(t *testing.T) {
	var started atomic.Int64
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		started.Add(1)
		<-release
	}))
	defer ts.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	done := make(chan *Summary)
	go func() {
		sum, err := Run(ctx, Config{URL: ts.URL, Rate: 1000, Connections: 4}, func(*timeline.Record) error {
			n.Add(1)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	for started.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	release <- struct{}{} // let the four in flight finish one by one
	release <- struct{}{}
	release <- struct{}{}
	release <- struct{}{}
	sum := <-done
	if !sum.Interrupted || sum.Requests != 4 || n.Load() != 4 || sum.OK != 4 {
		t.Errorf("interrupted=%v requests=%d recorded=%d ok=%d, want true 4 4 4", sum.Interrupted, sum.Requests, n.Load(), sum.OK)
	}
}

// A failing sink stops the sending: the requests after the one it refused
// are only those already in flight, one per connection. They hang until
// the probe's timeout, so none can end and free a worker to send more.
func TestSinkErrorStops(t *testing.T) {
	const failAt, conns = 5, 4
	var received atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if received.Add(1) > failAt {
			<-r.Context().Done() // the probe gives up at its timeout
		}
	}))
	defer ts.Close()
	boom := errors.New("disk full")
	calls := 0
	sum, err := Run(context.Background(), Config{URL: ts.URL, Rate: 2000, Requests: 100000, Connections: conns,
		Timeout: 500 * time.Millisecond}, func(*timeline.Record) error {
		if calls++; calls == failAt {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want disk full", err)
	}
	if calls != failAt {
		t.Errorf("the sink got %d records, want %d (none after its error)", calls, failAt)
	}
	if n := received.Load(); n > failAt+conns {
		t.Errorf("the server got %d requests; after the sink failed only the %d in flight may follow", n, conns)
	}
	if sum == nil || sum.Requests != uint64(received.Load()) {
		t.Errorf("summary %+v: every request sent must be counted, the server got %d", sum, received.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {URL: "ftp://x/"}, {URL: "http://"}, {URL: "http://x/", Rate: -1},
		{URL: "http://x/", Protocol: "3"}, {URL: "http://x/", Protocol: ProtocolHTTP2}} {
		if _, err := Run(context.Background(), c, nil); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestBudget(t *testing.T) {
	s := NewSummary(0, time.Millisecond, time.Second)
	for i := range 1000 {
		c := timeline.ClassOK
		if i < 2 {
			c = timeline.ClassHTTP502
		}
		s.Add(&timeline.Record{Kind: timeline.KindRequest, Time: time.Now(), Class: c})
	}
	s.Close()
	r, _ := ParseRatio("0.1%")
	for _, tc := range []struct {
		b    Budget
		fail bool
	}{{NoBudget, false}, {Budget{2, -1}, false}, {Budget{1, -1}, true}, {Budget{-1, r}, true}, {Budget{-1, 0.002}, false}} {
		if got := tc.b.Exceeded(s) != ""; got != tc.fail {
			t.Errorf("%+v: exceeded=%v, want %v", tc.b, got, tc.fail)
		}
	}
	for _, bad := range []string{"x", "150%", "-1"} {
		if _, err := ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q): no error", bad)
		}
	}
}
