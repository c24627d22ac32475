package alb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SetReachable says whether ip is on the network. On AWS a deleted pod's IP
// leaves the VPC: a TCP connect to it is not refused (no RST), it gets no
// answer at all, and the ALB gives up after its connect timeout (504). On
// loopback a connect is normally answered at once (accepted, or refused with
// an RST), so the lab tells the LB when an IP is gone (reachable false) and
// when a new pod holds it again (true).
//
// While ip is unreachable, a new connection from the proxy to any target on
// it waits Config.ConnectTimeout (or until the client goes away) and fails
// with ErrConnectTimeout; a health check of it fails as a timeout
// (Target.Timeout). Connections opened before stay as they are. ip need not
// be registered; only loopback IPs are accepted, as by Register.
func (lb *LB) SetReachable(ip string, reachable bool) error {
	if err := lb.unreachable.Set(ip, reachable); err != nil {
		return fmt.Errorf("alb: %w", err)
	}
	return nil
}

// isUnreachable reports whether ip (in normalized form) was made unreachable.
func (lb *LB) isUnreachable(ip string) bool { return lb.unreachable.Unreachable(ip) }

// Reachability is the set of IPs that have left the network, for a load
// balancer stand-in to treat connects to them as unanswered (package nlb
// keeps one too). The zero value has every IP reachable; it is safe for
// concurrent use.
type Reachability struct {
	mu sync.Mutex // serializes writers
	// gone is an immutable set replaced by Set, read without a lock: it is
	// consulted on every new backend connection.
	gone atomic.Pointer[map[string]struct{}]
}

// Set says whether ip is on the network. Only loopback IPs are accepted, as
// targets are.
func (r *Reachability) Set(ip string, reachable bool) error {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return fmt.Errorf("%q: not an IP address", ip)
	}
	if !parsed.IsLoopback() {
		return fmt.Errorf("%s: not a loopback address (the lab only sends traffic to 127.0.0.0/8 and ::1)", ip)
	}
	key := parsed.String() // the form NormalizeTargets gives targets
	r.mu.Lock()
	defer r.mu.Unlock()
	var old map[string]struct{}
	if m := r.gone.Load(); m != nil {
		old = *m
	}
	if _, gone := old[key]; gone == !reachable {
		return nil
	}
	next := make(map[string]struct{}, len(old)+1)
	for k := range old {
		next[k] = struct{}{}
	}
	if reachable {
		delete(next, key)
	} else {
		next[key] = struct{}{}
	}
	r.gone.Store(&next)
	return nil
}

// Unreachable reports whether ip (in normalized form) has left the network.
func (r *Reachability) Unreachable(ip string) bool {
	m := r.gone.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	_, gone := (*m)[ip]
	return gone
}

// dial opens a connection to addr ("ip:port") for the proxy or the health
// checker. To an unreachable IP it behaves as a connect whose SYNs go
// unanswered: it waits out ConnectTimeout and fails with a timeout, unless
// ctx ends (ctx's error) or the LB closes (net.ErrClosed) first.
func (lb *LB) dial(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !lb.isUnreachable(host) {
		if lb.cfg.DialTarget != nil {
			ctx, cancel := context.WithTimeout(ctx, lb.cfg.ConnectTimeout)
			defer cancel()
			return lb.cfg.DialTarget(ctx, "tcp", addr)
		}
		return d.DialContext(ctx, "tcp", addr)
	}
	p, _ := strconv.Atoi(port)
	opErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP(host), Port: p}}
	tm := time.NewTimer(lb.cfg.ConnectTimeout)
	defer tm.Stop()
	select {
	case <-tm.C:
		opErr.Err = os.ErrDeadlineExceeded // "i/o timeout", Timeout() true: what a real unanswered dial returns
	case <-ctx.Done():
		opErr.Err = ctx.Err()
	case <-lb.done:
		opErr.Err = net.ErrClosed
	}
	return nil, opErr
}

// isConnectTimeout reports whether a dial error is a connect timeout.
func isConnectTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
