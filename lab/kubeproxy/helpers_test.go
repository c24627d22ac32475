package kubeproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/rollsafe/rollsafe/lab/labtest"
	"github.com/rollsafe/rollsafe/timeline"
)

// pod is a real HTTP server on loopback standing in for one pod: it answers
// every request with its name; /reset aborts the connection with an RST.
type pod struct {
	name string
	addr netip.AddrPort
	srv  *http.Server
}

func startPod(t *testing.T, name string) *pod {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pod{name: name, addr: netip.MustParseAddrPort(ln.Addr().String())}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			c, _, _ := w.(http.Hijacker).Hijack()
			reset(c)
			return
		}
		io.WriteString(w, name)
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *pod) ready(node string) Endpoint {
	return Endpoint{Addr: p.addr, Node: node, Ready: true, Serving: true}
}

func (p *pod) terminating(node string, serving bool) Endpoint {
	return Endpoint{Addr: p.addr, Node: node, Serving: serving, Terminating: true}
}

// recorder collects every node's records and hands them out per node.
type recorder struct {
	mu  sync.Mutex
	chs map[string]chan *timeline.Record
}

func newRecorder() *recorder { return &recorder{chs: map[string]chan *timeline.Record{}} }

func (r *recorder) ch(node string) chan *timeline.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chs[node] == nil {
		r.chs[node] = make(chan *timeline.Record, 100)
	}
	return r.chs[node]
}

func (r *recorder) sink(rec *timeline.Record) error {
	r.ch(rec.Attrs["node"]) <- rec
	return nil
}

// learned waits for node's next learned record.
func (r *recorder) learned(t *testing.T, node string) *timeline.Record {
	t.Helper()
	return <-r.ch(node)
}

// apply hands n the endpoints and waits until n has applied them.
func (r *recorder) apply(t *testing.T, n *Node, eps ...Endpoint) *timeline.Record {
	t.Helper()
	n.Update(eps)
	return r.learned(t, n.Name())
}

// startNode starts a node on 127.0.0.1 with lag 0, changed by edit.
func startNode(t *testing.T, rec *recorder, name string, edit func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig(name, "127.0.0.1:0")
	cfg.Lag = 0
	cfg.Sink = rec.sink
	if edit != nil {
		edit(&cfg)
	}
	return labtest.Start(t, New, cfg)
}

// nodeToPod starts pod a and node n1, and waits until n1 forwards to a,
// ready on n1, alone.
func nodeToPod(t *testing.T) (*pod, *Node) {
	t.Helper()
	rec := newRecorder()
	a := startPod(t, "a")
	n := startNode(t, rec, "n1", nil)
	rec.apply(t, n, a.ready("n1"))
	return a, n
}

// conn is one client TCP connection through a node, sending HTTP/1.1
// requests one after another on it, as a load balancer's keep-alive
// connection does.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, n *Node) *conn {
	t.Helper()
	c := labtest.Dial(t, n.Addr())
	return &conn{c: c, br: bufio.NewReader(c)}
}

// get sends one request and returns the body (the pod's name).
func (c *conn) get(path string) (string, error) {
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: lab\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mustGet(t *testing.T, c *conn) string {
	t.Helper()
	body, err := c.get("/")
	if err != nil {
		t.Fatalf("GET through the node: %v", err)
	}
	return body
}

// isGone reports whether err is what a client sees when its peer closed
// (FIN: EOF) or reset (RST: ECONNRESET) the connection.
func isGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// tryGet opens a connection through n and sends one request on it. The
// node's reset may reach the client while its connect is still returning,
// so either step may fail with it.
func tryGet(n *Node) error {
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = (&conn{c: c, br: bufio.NewReader(c)}).get("/")
	return err
}
