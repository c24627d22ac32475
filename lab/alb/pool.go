package alb

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// pool holds one target's backend connections. It is deliberately not an
// http.Transport: the Transport retries an idempotent request on a new
// connection when a reused one turns out dead, and the ALB does not — that
// dead reused connection is a 502 on AWS, so it must be one here.
type pool struct {
	mu     sync.Mutex
	idle   []*bconn // LIFO, like nginx's and Go's keep-alive caches
	all    map[*bconn]struct{}
	closed bool
}

// bconn is one keep-alive connection to a target.
type bconn struct {
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	dc        deadlineConn
	uses      int // requests sent before the current one
	idleSince time.Time
}

// deadlineConn gives reads an idle timeout: each read must see data within
// d, which is how the ALB's idle timeout turns a silent target into a 504.
type deadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(p)
}

// get returns the most recently used idle connection, or nil.
// Connections idle past the idle timeout are closed by the janitor; one that
// the target has closed is returned all the same: using it is the race.
func (p *pool) get() *bconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		bc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		return bc
	}
	return nil
}

// add tracks a freshly dialled connection; false means the pool is closed
// (the target's deregistration delay elapsed) and c was closed.
func (p *pool) add(c net.Conn, readTimeout time.Duration) (*bconn, bool) {
	bc := &bconn{c: c, dc: deadlineConn{Conn: c, d: readTimeout}}
	bc.br = bufio.NewReaderSize(&bc.dc, 16<<10)
	bc.bw = bufio.NewWriterSize(c, 16<<10)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, false
	}
	if p.all == nil {
		p.all = map[*bconn]struct{}{}
	}
	p.all[bc] = struct{}{}
	return bc, true
}

// put returns a connection after a complete exchange.
func (p *pool) put(bc *bconn, now time.Time) {
	bc.uses++
	bc.idleSince = now
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

// discard closes a connection that must not be reused.
func (p *pool) discard(bc *bconn) {
	p.mu.Lock()
	delete(p.all, bc)
	p.mu.Unlock()
	bc.c.Close()
}

// expire closes idle connections unused since before cutoff.
func (p *pool) expire(cutoff time.Time) {
	var old []*bconn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, bc := range p.idle {
		if bc.idleSince.Before(cutoff) {
			old = append(old, bc)
			delete(p.all, bc)
		} else {
			keep = append(keep, bc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, bc := range old {
		bc.c.Close()
	}
}

// closeAll closes every connection, idle or carrying a request, and
// refuses new ones: the deregistration delay elapsed or the LB closed.
func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	all := p.all
	p.all, p.idle = nil, nil
	p.mu.Unlock()
	for bc := range all {
		bc.c.Close()
	}
}
