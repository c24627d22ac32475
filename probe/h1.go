package probe

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// h1Conn is one worker's own keep-alive HTTP/1.1 connection for a plain
// http URL: the request is written and the response read on the worker's
// goroutine, with net/http's own Request.Write and ReadResponse, so the
// bytes on the wire and the parsing are net/http's. What it saves is the
// Transport's machinery per request: the hand-offs to a connection's read
// and write goroutines and the pool's locks, which the CPU profile of a
// recorded run showed as most of the client's time after the syscalls.
//
// One attempt per request, as with the Transport and emptyBody: a failed
// exchange closes the connection and returns the error; nothing is sent
// again. Like the Transport it dials only when it has no connection, closes
// one idle for IdleConnTimeout before reusing it, and does not reuse one the
// server has closed while it was idle (see stale).
type h1Conn struct {
	cfg  *Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when the last exchange ended; zero while one runs
}

func newH1Conn(cfg *Config, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string) *h1Conn {
	return &h1Conn{cfg: cfg, dial: dial, addr: addr,
		br: bufio.NewReaderSize(nil, 4<<10), bw: bufio.NewWriterSize(nil, 4<<10)}
}

// RoundTrip is exchange with the request context's deadline.
func (h *h1Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, _ := req.Context().Deadline()
	return h.exchange(req, dl)
}

// exchange sends req on the connection (dialling one if needed) and reads
// its response, all before deadline (zero: none), body included; the body
// must be read to its end or closed before the next call.
func (h *h1Conn) exchange(req *http.Request, deadline time.Time) (*http.Response, error) {
	if h.c != nil && (time.Since(h.idle) >= h.cfg.IdleConnTimeout || h.stale()) {
		h.close()
	}
	if h.c == nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if deadline.IsZero() {
			ctx, cancel = context.WithCancel(context.Background())
		}
		c, err := h.dial(ctx, "tcp", h.addr)
		cancel()
		if err != nil {
			return nil, err
		}
		h.c = c
		h.br.Reset(c)
		h.bw.Reset(c)
	}
	h.idle = time.Time{}
	_ = h.c.SetDeadline(deadline)
	err := req.Write(h.bw)
	if err == nil {
		err = h.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		resp, err = h.readResponse(req)
	}
	if err != nil {
		h.close()
		return nil, err
	}
	resp.Body = &h1Body{h: h, body: resp.Body, reuse: !resp.Close}
	return resp, nil
}

// readResponse reads the final response, skipping informational ones
// (103 Early Hints, a stray 100 Continue) as the Transport does; 101 is
// final.
func (h *h1Conn) readResponse(req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(h.br, req)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
	}
}

// stale says the server closed (or wrote to) the idle connection: a peek
// that does not wait. Only checked after an idle spell of a millisecond or
// more; back-to-back requests leave the server no time to close, and the
// Transport's own check (a read parked on every idle connection) races
// the same way.
func (h *h1Conn) stale() bool {
	if time.Since(h.idle) < time.Millisecond {
		return false
	}
	sc, ok := h.c.(syscall.Conn)
	if !ok {
		return false
	}
	// The last exchange's deadline may have passed, and a RawConn refuses
	// to read past it: clear it (RoundTrip sets the next one).
	_ = h.c.SetDeadline(time.Time{})
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	readable := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		readable = n > 0 || (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN))
		return true // never wait
	})
	return readable
}

func (h *h1Conn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// h1Body hands the connection back once the body has been read to its end
// and closed; a body closed early, or a response that said Connection:
// close, closes the connection.
type h1Body struct {
	h     *h1Conn
	body  io.ReadCloser
	reuse bool
	eof   bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	} else if err != nil {
		b.reuse = false
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.body.Close()
	if b.eof && b.reuse && err == nil {
		b.h.idle = time.Now()
		return nil
	}
	b.h.close()
	return err
}
