package kubeproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// An established connection stays on its pod after the pod leaves the
// endpoints (no conntrack flush); a new one goes to the pod that is left.
func TestPinnedConnectionOutlivesRemoval(t *testing.T) {
	rec := newRecorder()
	a, b := startPod(t, "a"), startPod(t, "b")
	n := startNode(t, rec, "n1", nil)
	rec.apply(t, n, a.ready("n1"))
	old := dial(t, n)
	if got := mustGet(t, old); got != "a" {
		t.Fatalf("first request went to %q, want a", got)
	}

	rec.apply(t, n, b.ready("n1"))
	if got := mustGet(t, old); got != "a" {
		t.Errorf("keep-alive connection after a's removal reached %q, want still a", got)
	}
	if got := mustGet(t, dial(t, n)); got != "b" {
		t.Errorf("new connection went to %q, want b", got)
	}
	if s := n.Stats(); s.Pinned[a.addr] != 1 || s.Pinned[b.addr] != 1 {
		t.Errorf("Pinned = %v, want one connection each", s.Pinned)
	}
}

// When the pinned pod's server goes away, the connection through the node
// ends (the pod's FIN passed on); a new connection to a pod that no longer
// listens is reset.
func TestPodExitEndsPinnedConnection(t *testing.T) {
	a, n := nodeToPod(t)
	c := dial(t, n)
	mustGet(t, c)

	a.srv.Close() // the process exits: its kernel closes its connections and its listener
	if _, err := c.get("/"); !isGone(err) {
		t.Errorf("request on the pinned connection after the pod exited: %v, want EOF or reset", err)
	}
	if err := tryGet(n); !isReset(err) {
		t.Errorf("new connection to the exited pod: %v, want connection reset", err)
	}
	if s := n.Stats(); s.PodDialFailed != 1 {
		t.Errorf("PodDialFailed = %d, want 1", s.PodDialFailed)
	}
}

// A pod that resets its connection has the client's connection reset too.
func TestPodResetIsPassedOn(t *testing.T) {
	_, n := nodeToPod(t)
	if _, err := dial(t, n).get("/reset"); !isReset(err) {
		t.Errorf("pod reset its connection; client saw %v, want connection reset", err)
	}
}

// Each node applies an update after its own lag: one that has not yet
// learned still refuses while one that has forwards.
func TestEachNodeLearnsAfterItsOwnLag(t *testing.T) {
	rec := newRecorder()
	a := startPod(t, "a")
	fast := startNode(t, rec, "fast", nil)
	slow := startNode(t, rec, "slow", func(c *Config) { c.Lag = time.Hour })
	later := startNode(t, rec, "later", func(c *Config) { c.Lag = 20 * time.Millisecond })
	Nodes{fast, slow, later}.Update([]Endpoint{a.ready("fast")})
	rec.learned(t, "fast")
	rec.learned(t, "later")
	if got := mustGet(t, dial(t, fast)); got != "a" {
		t.Errorf("fast node forwarded to %q, want a", got)
	}
	if v := slow.Verdict(); v != Reject {
		t.Errorf("slow node's verdict before its lag = %s, want %s", v, Reject)
	}
	if _, err := net.Dial("tcp", slow.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial slow node before its lag: %v, want connection refused", err)
	}
	if err := (Nodes{fast, slow, later}).Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// A snapshot overtaken by a newer one is never applied after it.
func TestNewestSnapshotWins(t *testing.T) {
	rec := newRecorder()
	a, b := startPod(t, "a"), startPod(t, "b")
	n := startNode(t, rec, "n1", nil)
	n.Update([]Endpoint{a.ready("n1")})
	n.Update([]Endpoint{b.ready("n1")})
	for r := rec.learned(t, "n1"); r.Attrs["usable"] != b.addr.String(); r = rec.learned(t, "n1") {
	}
	if u := n.Usable(); len(u) != 1 || u[0].Addr != b.addr {
		t.Errorf("Usable = %v, want only b", u)
	}
}

// With no ready endpoint left, serving-but-terminating ones are used; a
// terminating endpoint that no longer serves is not, and with nothing else
// the node refuses.
func TestTerminatingFallback(t *testing.T) {
	rec := newRecorder()
	a, b := startPod(t, "a"), startPod(t, "b")
	n := startNode(t, rec, "n1", nil)

	rec.apply(t, n, a.ready("n2"), b.terminating("n2", true))
	if u := n.Usable(); len(u) != 1 || u[0].Addr != a.addr {
		t.Errorf("with a ready endpoint, Usable = %v, want only a", u)
	}

	rec.apply(t, n, b.terminating("n2", true))
	if got := mustGet(t, dial(t, n)); got != "b" {
		t.Errorf("with only a serving-terminating endpoint, connection went to %q, want b", got)
	}

	n.Update([]Endpoint{b.terminating("n2", false)})
	if r := rec.learned(t, "n1"); r.State != string(Reject) {
		t.Errorf("verdict with only a non-serving terminating endpoint = %s, want %s", r.State, Reject)
	}
	if _, err := net.Dial("tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial with no usable endpoint: %v, want connection refused", err)
	}
}

// A node that knows no endpoint refuses connections, before any update and
// after an empty one.
func TestNoEndpointsRefused(t *testing.T) {
	rec := newRecorder()
	n := startNode(t, rec, "n1", nil)
	if _, err := net.Dial("tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial before any update: %v, want connection refused", err)
	}
	rec.apply(t, n)
	if _, err := net.Dial("tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after an empty update: %v, want connection refused", err)
	}
	if _, err := n.DialContext(context.Background(), "tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("DialContext with no endpoint: %v, want connection refused", err)
	}
}

// Cluster policy forwards to endpoints on other nodes; Local does not.
func TestClusterForwardsAnywhereLocalOnlyHere(t *testing.T) {
	rec := newRecorder()
	a := startPod(t, "a")
	cluster := startNode(t, rec, "n1", nil)
	local := startNode(t, rec, "n1-local", func(c *Config) { c.Policy = PolicyLocal })
	for _, n := range []*Node{cluster, local} {
		n.Update([]Endpoint{a.ready("n2")})
	}
	rec.learned(t, "n1")
	rec.learned(t, "n1-local")
	if got := mustGet(t, dial(t, cluster)); got != "a" {
		t.Errorf("Cluster node forwarded to %q, want a on n2", got)
	}
	if v := local.Verdict(); v != Drop {
		t.Errorf("Local node with only a remote endpoint: verdict %s, want %s", v, Drop)
	}
}

// Local: the health-check node port answers 200 with a local ready
// endpoint and 503 once the node's endpoints are all terminating, while
// the node still forwards to them; with endpoints only elsewhere the node
// drops, and with none anywhere it refuses.
func TestLocalHealthCheckNodePort(t *testing.T) {
	rec := newRecorder()
	a, b := startPod(t, "a"), startPod(t, "b")
	n := startNode(t, rec, "n1", func(c *Config) {
		c.Policy = PolicyLocal
		c.HealthCheckListen = "127.0.0.1:0"
	})
	check := func(want int, when string) {
		t.Helper()
		resp, err := http.Get("http://" + n.HealthCheckAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: health check %d, want %d", when, resp.StatusCode, want)
		}
	}
	check(http.StatusServiceUnavailable, "before any update")

	rec.apply(t, n, a.ready("n1"), b.ready("n2"))
	check(http.StatusOK, "local ready endpoint")

	rec.apply(t, n, a.terminating("n1", true), b.ready("n2"))
	check(http.StatusServiceUnavailable, "local endpoint terminating")
	if got := mustGet(t, dial(t, n)); got != "a" {
		t.Errorf("local endpoint terminating: forwarded to %q, want a (serving, terminating)", got)
	}

	rec.apply(t, n, b.ready("n2"))
	check(http.StatusServiceUnavailable, "endpoints only on another node")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	if _, err := n.DialContext(ctx, "tcp", n.Addr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("DialContext to a dropping node: %v, want a timeout", err)
	}

	rec.apply(t, n)
	check(http.StatusServiceUnavailable, "no endpoints")
	if _, err := net.Dial("tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial with no endpoints: %v, want connection refused", err)
	}
}

// A dropped connection gets no answer: what the client reads after the
// node closes is the end of the stream, with nothing before it.
func TestDroppedConnectionIsUnanswered(t *testing.T) {
	rec := newRecorder()
	a := startPod(t, "a")
	n := startNode(t, rec, "n1", func(c *Config) { c.Policy = PolicyLocal })
	rec.apply(t, n, a.ready("n2"))
	c := dial(t, n)
	if _, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for n.Stats().Dropped == 0 { // the node has taken the connection and holds it
		time.Sleep(time.Millisecond)
	}
	n.Close()
	if b, err := io.ReadAll(c.c); len(b) != 0 || err != nil && !isGone(err) {
		t.Errorf("dropped connection read %q, %v; want nothing", b, err)
	}
}

// DialContext goes straight to a pod, as DNAT does, and passes a pod's
// refusal on as a refused connect.
func TestDialContextLikeDNAT(t *testing.T) {
	a, n := nodeToPod(t)
	c, err := n.DialContext(context.Background(), "tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != a.addr.String() {
		t.Errorf("DialContext connected to %s, want the pod %s", got, a.addr)
	}
	c.Close()
	a.srv.Close()
	if _, err := n.DialContext(context.Background(), "tcp", n.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("DialContext to an exited pod: %v, want connection refused", err)
	}
	if _, err := n.DialContext(context.Background(), "tcp", "127.0.0.1:1"); err == nil {
		t.Error("DialContext to another address succeeded")
	}
	n.Close()
	if _, err := n.DialContext(context.Background(), "tcp", n.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialContext after Close: %v, want net.ErrClosed", err)
	}
}

// New connections spread over the usable endpoints at random; a seed
// repeats the choice.
func TestRandomChoiceSpreadsConnections(t *testing.T) {
	rec := newRecorder()
	a, b := startPod(t, "a"), startPod(t, "b")
	n := startNode(t, rec, "n1", nil)
	rec.apply(t, n, a.ready("n1"), b.ready("n1"))
	for range 40 {
		c, err := n.DialContext(context.Background(), "tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if s := n.Stats(); s.Pinned[a.addr] == 0 || s.Pinned[b.addr] == 0 {
		t.Errorf("Pinned = %v, want both endpoints chosen", s.Pinned)
	}
}

// DialPod is how the node reaches pods: an unanswered pod IP comes back to
// a DialContext caller as the timeout it is.
func TestDialPodHook(t *testing.T) {
	rec := newRecorder()
	a := startPod(t, "a")
	unanswered := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrDeadlineExceeded}
	}
	n := startNode(t, rec, "n1", func(c *Config) { c.DialPod = unanswered })
	rec.apply(t, n, a.ready("n1"))
	if _, err := n.DialContext(context.Background(), "tcp", n.Addr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("DialContext through an unanswering DialPod: %v, want its timeout", err)
	}
	if err := tryGet(n); !isReset(err) {
		t.Errorf("connection through an unanswering DialPod: %v, want connection reset", err)
	}
}
