package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// listen opens or closes the NodePort listener. A node that rejects has no
// listener, so the kernel refuses connections to the port: what kube-proxy's
// REJECT (an ICMP port unreachable) makes a Linux client's connect return.
// Call with n.mu held.
func (n *Node) listen(on bool) error {
	switch {
	case on && n.ln == nil && !n.closed:
		ln, err := net.ListenTCP("tcp", n.addr)
		if err != nil {
			return fmt.Errorf("kubeproxy: node %s: listen again on %s: %w", n.cfg.Name, n.addr, err)
		}
		n.ln = ln
		n.wg.Add(1)
		go n.serve(ln)
	case !on && n.ln != nil:
		n.ln.Close()
		n.ln = nil
	}
	return nil
}

// serve accepts connections until ln is closed. Any other accept error
// fails the node: it no longer answers as kube-proxy would.
func (n *Node) serve(ln net.Listener) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				n.rec.Fail(fmt.Errorf("kubeproxy: node %s: accept: %w", n.cfg.Name, err))
			}
			return
		}
		n.wg.Add(1)
		go n.handle(c)
	}
}

// handle does with one accepted connection what the node's view says.
func (n *Node) handle(c net.Conn) {
	defer n.wg.Done()
	if !n.track(c) {
		return
	}
	defer n.untrack(c)
	v, ep := n.choose()
	switch v {
	case Reject:
		n.count(func(s *Stats) { s.Rejected++ })
		reset(c)
	case Drop:
		n.count(func(s *Stats) { s.Dropped++ })
		n.hold(c)
	default:
		n.forward(c, ep)
	}
}

// choose returns the node's verdict and, for Forward, a random usable
// endpoint: iptables and nftables modes give each endpoint an equal chance.
func (n *Node) choose() (Verdict, Endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.view
	if v.verdict != Forward {
		return v.verdict, Endpoint{}
	}
	return Forward, v.usable[n.rng.IntN(len(v.usable))]
}

// forward pins client to ep for the connection's life. A failed dial to the
// pod gets the client reset, the nearest a listener that has already
// accepted can come to a refused connect.
func (n *Node) forward(client net.Conn, ep Endpoint) {
	pod, err := n.dialPod(n.ctx, "tcp", ep.Addr.String())
	if err != nil {
		n.count(func(s *Stats) { s.PodDialFailed++ })
		reset(client)
		return
	}
	n.pinned(ep)
	if !n.track(pod) {
		return
	}
	defer n.untrack(pod)
	splice(client, pod)
}

// hold leaves a dropped connection unanswered until the client gives up or
// the node closes, even if the node learns an endpoint meanwhile.
func (n *Node) hold(c net.Conn) {
	io.Copy(io.Discard, c)
	c.Close()
}

// splice relays both directions until both have ended, then closes both.
func splice(client, pod net.Conn) {
	done := make(chan struct{})
	go func() {
		pipe(pod, client)
		close(done)
	}()
	pipe(client, pod)
	<-done
	client.Close()
	pod.Close()
}

// pipe copies src to dst and passes src's end on as the same signal: a FIN
// (EOF) as a FIN (CloseWrite), a reset as a reset. A write that fails means
// dst's peer is gone: src is reset, as the peer's RST would reach it.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if _, werr := dst.Write(buf[:nr]); werr != nil {
				reset(src)
				return
			}
		}
		if errors.Is(rerr, io.EOF) {
			closeWrite(dst)
			return
		}
		if rerr != nil {
			reset(dst)
			return
		}
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}

// reset closes c with an RST instead of a FIN (SO_LINGER 0).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// DialContext connects as a load balancer's connect to the NodePort does
// through iptables DNAT: refused when the node rejects, unanswered until
// ctx ends when it drops, and otherwise straight to one pod, the pod's own
// refusal included. addr must be the node's Addr. The connection belongs
// to the caller; Close does not close it, and after Close every dial fails
// with net.ErrClosed.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != n.Addr() {
		return nil, fmt.Errorf("kubeproxy: node %s: dial %s: not this node's NodePort %s", n.cfg.Name, addr, n.Addr())
	}
	opErr := &net.OpError{Op: "dial", Net: network, Addr: n.addr}
	switch v, ep := n.choose(); {
	case n.isClosed():
		opErr.Err = net.ErrClosed
	case v == Reject:
		opErr.Err = syscall.ECONNREFUSED
	case v == Drop:
		n.count(func(s *Stats) { s.Dropped++ })
		opErr.Err = n.unanswered(ctx)
	default:
		c, err := n.dialPod(ctx, network, ep.Addr.String())
		if err != nil {
			n.count(func(s *Stats) { s.PodDialFailed++ })
			return nil, err
		}
		n.pinned(ep)
		return c, nil
	}
	return nil, opErr
}

// unanswered waits as a connect whose SYNs are dropped does: until ctx ends
// (a deadline gives the timeout a real dial returns) or the node closes.
func (n *Node) unanswered(ctx context.Context) error {
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return os.ErrDeadlineExceeded
		}
		return ctx.Err()
	case <-n.ctx.Done():
		return net.ErrClosed
	}
}

// track registers c so Close can close it; false (and c closed) once the
// node is closed.
func (n *Node) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c.Close()
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

func (n *Node) untrack(c net.Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

func (n *Node) pinned(ep Endpoint) {
	n.count(func(s *Stats) {
		if s.Pinned == nil {
			s.Pinned = map[netip.AddrPort]int{}
		}
		s.Pinned[ep.Addr]++
	})
}

func (n *Node) count(f func(*Stats)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.stats)
}
