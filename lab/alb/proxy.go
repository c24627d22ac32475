package alb

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// ErrorKind says how forwarding a request failed, in the terms the lab
// needs to attribute a cause.
type ErrorKind string

const (
	ErrNone ErrorKind = ""
	// ErrNoTarget: no target registered on this node: 503.
	ErrNoTarget ErrorKind = "no_registered_target"
	// ErrDialRefused: the target refused the TCP connection: 502.
	ErrDialRefused ErrorKind = "dial_refused"
	// ErrDial: the TCP connect failed otherwise (neither refused nor timed
	// out): 502.
	ErrDial ErrorKind = "dial_error"
	// ErrConnectTimeout: the TCP connect got no answer within
	// ConnectTimeout: 504, nothing sent to the target. During a rollout on
	// AWS it is a target whose pod was deleted, its IP gone from the VPC
	// (seed 000's `-1 -1 -1 504 -` after 10.2 s); in the lab, a target whose
	// IP was made unreachable with SetReachable.
	ErrConnectTimeout ErrorKind = "connect_timeout"
	// ErrReusedConnClosed: reset or EOF on a reused keep-alive connection
	// before a response: 502, never retried (the keep-alive race).
	ErrReusedConnClosed ErrorKind = "reused_conn_closed"
	// ErrConnClosed: reset or EOF on a fresh connection before a response: 502.
	ErrConnClosed ErrorKind = "conn_closed"
	// ErrTimeout: the connection was open but the target sent nothing for
	// TargetTimeout: 504.
	ErrTimeout ErrorKind = "target_timeout"
	// ErrDeregistrationCut: the deregistration delay elapsed with the
	// request in flight: 502.
	ErrDeregistrationCut ErrorKind = "deregistration_cut"
	// ErrBadResponse: the target answered something that is not HTTP/1.x: 502.
	ErrBadResponse ErrorKind = "bad_response"
	// ErrClientClosed: the client went away first: 460, as the ALB logs it.
	ErrClientClosed ErrorKind = "client_closed"
)

// StatusClientClosed is the ALB's access-log status for a client that
// closed the connection before the LB answered.
const StatusClientClosed = 460

// RequestInfo is what the LB knows about one request: the facts the lab
// joins with its other timelines to attribute a cause.
type RequestInfo struct {
	Received time.Time // request headers read
	Sent     time.Time // request handed to the target (zero if never)
	Headers  time.Time // target's response headers read (zero if none)
	Done     time.Time // response finished

	Method, URI string
	TraceID     string // X-Amzn-Trace-Id, as received or generated
	Node        int    // LB node that served the client connection
	Target      string // "ip:port"; empty when none was chosen
	// Peer is the address the backend connection reached ("ip:port"), or
	// the one its dial failed at. It is Target unless Config.DialTarget
	// connects elsewhere: behind a kube-proxy node, the pod. Empty when no
	// connection was tried.
	Peer string
	// TargetState is the chosen target's state when it was chosen: a
	// draining target here means the node had not yet learned of the
	// deregistration.
	TargetState State
	FailOpen    bool // no healthy target on this node: routed to any registered one
	Reused      bool // sent on a reused keep-alive connection
	Err         ErrorKind
	ErrDetail   string // the underlying error text
	ELBStatus   int    // status the LB answered (the target's when it answered)
	// TargetStatus is the target's status, 0 when it sent no response.
	TargetStatus int
	// Cause is a preliminary attribution from what the LB alone knows;
	// the lab refines it with process timelines. Empty when not failed.
	Cause timeline.Cause

	receivedBytes, sentBytes int64
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ServeHTTP forwards one request the way an ALB node does.
func (lb *LB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := RequestInfo{Received: time.Now(), Method: r.Method, URI: r.RequestURI}
	n, _ := r.Context().Value(nodeKey{}).(*node)
	if n == nil {
		n = lb.nodes[0]
	}
	ri.Node = n.id
	ri.TraceID = r.Header.Get("X-Amzn-Trace-Id")
	if ri.TraceID == "" {
		ri.TraceID = newTraceID(ri.Received)
		r.Header.Set("X-Amzn-Trace-Id", ri.TraceID)
	}
	if lb.logW != nil {
		ri.receivedBytes = requestSize(r)
	}
	t, failOpen := n.pick()
	if t == nil {
		lb.fail(w, &ri, http.StatusServiceUnavailable, ErrNoTarget, nil)
	} else {
		ri.Target, ri.TargetState, ri.FailOpen = t.key, t.state(), failOpen
		lb.forward(w, r, t, &ri)
	}
	ri.Done = time.Now()
	ri.Cause = causeOf(&ri)
	lb.logRequest(r, &ri)
	if lb.cfg.OnRequest != nil {
		lb.cfg.OnRequest(&ri)
	}
	if ri.Err != ErrNone && ri.Headers.After(ri.Sent) {
		// The response was cut after its headers went out: the only honest
		// signal left is to break the client connection.
		panic(http.ErrAbortHandler)
	}
}

// forward sends r to t on a pooled or new connection and relays the answer.
func (lb *LB) forward(w http.ResponseWriter, r *http.Request, t *target, ri *RequestInfo) {
	bc := t.pool.get()
	if bc != nil {
		ri.Reused = true
		ri.Peer = bc.c.RemoteAddr().String()
	} else {
		c, err := lb.dial(r.Context(), &lb.dialer, t.key)
		ri.Peer = PeerOf(c, err)
		if err != nil {
			kind, status := ErrDial, http.StatusBadGateway
			switch {
			case r.Context().Err() != nil:
				kind, status = ErrClientClosed, StatusClientClosed
			case errors.Is(err, syscall.ECONNREFUSED):
				kind = ErrDialRefused
			case isConnectTimeout(err):
				kind, status = ErrConnectTimeout, http.StatusGatewayTimeout
			}
			lb.fail(w, ri, status, kind, err)
			return
		}
		var ok bool
		if bc, ok = t.pool.add(c, lb.cfg.TargetTimeout); !ok {
			lb.fail(w, ri, http.StatusBadGateway, ErrDeregistrationCut, errors.New("target deregistered"))
			return
		}
	}
	// A client that goes away aborts the exchange: closing the backend
	// connection is the only way to unblock its reads.
	stop := context.AfterFunc(r.Context(), func() { bc.c.Close() })
	ri.Sent = time.Now()
	err := writeRequest(bc.bw, r, ri.TraceID, lb.port)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bc.br, r)
	}
	if err != nil {
		stop()
		t.pool.discard(bc)
		kind, status := lb.classify(err, t, bc, r)
		lb.fail(w, ri, status, kind, err)
		return
	}
	ri.Headers = time.Now()
	ri.TargetStatus, ri.ELBStatus = resp.StatusCode, resp.StatusCode
	h := w.Header()
	for k, vv := range resp.Header {
		if !hopByHop(k) {
			h[k] = vv
		}
	}
	if resp.ContentLength >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	sent, rerr, werr := copyBody(w, resp.Body)
	ri.sentBytes = sent + responseHeaderSize(resp)
	resp.Body.Close()
	clientGone := !stop()
	switch {
	case rerr != nil:
		t.pool.discard(bc)
		ri.Err, _ = lb.classify(rerr, t, bc, r)
		ri.ErrDetail = rerr.Error()
	case werr != nil || clientGone:
		t.pool.discard(bc)
		ri.Err, ri.ELBStatus = ErrClientClosed, StatusClientClosed
	case reusable(resp):
		t.pool.put(bc, time.Now())
	default:
		t.pool.discard(bc)
	}
}

// PeerOf is where a dial got to: the connection's remote address, or the
// address a dial error names ("" when it names none). Package nlb shares it.
func PeerOf(c net.Conn, err error) string {
	var oe *net.OpError
	switch {
	case err == nil:
		return c.RemoteAddr().String()
	case errors.As(err, &oe) && oe.Addr != nil:
		return oe.Addr.String()
	}
	return ""
}

// classify maps a failed exchange to an error kind and the status the ALB
// answers with.
func (lb *LB) classify(err error, t *target, bc *bconn, r *http.Request) (ErrorKind, int) {
	var ne net.Error
	switch {
	case t.cut.Load():
		return ErrDeregistrationCut, http.StatusBadGateway
	case r.Context().Err() != nil:
		return ErrClientClosed, StatusClientClosed
	case errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout, http.StatusGatewayTimeout
	case !connGone(err):
		return ErrBadResponse, http.StatusBadGateway
	case bc.uses > 0:
		return ErrReusedConnClosed, http.StatusBadGateway
	default:
		return ErrConnClosed, http.StatusBadGateway
	}
}

// connGone reports whether err means the peer closed or reset the connection.
func connGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// reusable says whether the connection may carry another request.
func reusable(resp *http.Response) bool {
	if resp.Close || !resp.ProtoAtLeast(1, 1) {
		return false
	}
	// A body delimited by the connection's end cannot be followed by another response.
	return resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0 || !bodyAllowed(resp)
}

func bodyAllowed(resp *http.Response) bool {
	s := resp.StatusCode
	return resp.Request.Method != http.MethodHead && s != 204 && s != 304 && s >= 200
}

// copyBody relays the body and says which side failed, if any.
func copyBody(w http.ResponseWriter, body io.Reader) (n int64, rerr, werr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		nr, err := body.Read(buf)
		if nr > 0 {
			nw, err := w.Write(buf[:nr])
			n += int64(nw)
			if err != nil {
				return n, nil, err
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// fail answers with the ALB's own error page (nothing for 460: the client
// is gone) and records why.
func (lb *LB) fail(w http.ResponseWriter, ri *RequestInfo, status int, kind ErrorKind, err error) {
	ri.ELBStatus, ri.Err = status, kind
	if err != nil {
		ri.ErrDetail = err.Error()
	}
	if status == StatusClientClosed {
		return
	}
	page := errorPages[status]
	h := w.Header()
	h["Server"] = []string{"awselb/2.0"}
	h["Content-Type"] = []string{"text/html"}
	h["Content-Length"] = []string{strconv.Itoa(len(page))}
	w.WriteHeader(status)
	w.Write(page)
	ri.sentBytes = int64(len(page)) + 120
}

var errorPages = map[int][]byte{}

func init() {
	for _, s := range []int{502, 503, 504} {
		title := strconv.Itoa(s) + " " + http.StatusText(s)
		errorPages[s] = []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title + "</h1></center>\r\n</body>\r\n</html>\r\n")
	}
}

// causeOf attributes a failure from what the LB alone can see.
func causeOf(ri *RequestInfo) timeline.Cause {
	switch {
	case ri.Err == ErrNone && ri.ELBStatus < 500, ri.Err == ErrClientClosed:
		return ""
	case ri.Err == ErrNoTarget:
		return timeline.CauseNoRegisteredTarget
	case ri.Err == ErrDeregistrationCut:
		return timeline.CauseDeregistrationCut
	case ri.Err == ErrNone:
		return timeline.CauseUnknown // the target itself answered 5xx
	case ri.FailOpen:
		return timeline.CauseNoHealthyTarget
	case ri.Err == ErrConnectTimeout && ri.TargetState == StateDraining:
		// A connect to a draining target unanswered: its pod is gone.
		return timeline.CauseDrainingTargetGone
	case ri.TargetState == StateDraining:
		return timeline.CauseDrainingTargetExited
	case ri.Err == ErrReusedConnClosed:
		return timeline.CauseKeepAliveRace
	case ri.Err == ErrDialRefused:
		return timeline.CauseTargetNotListening
	case ri.Err == ErrTimeout, ri.Err == ErrConnectTimeout:
		return timeline.CauseTargetTimeout
	default:
		return timeline.CauseUnknown
	}
}

// writeRequest writes r to a target as the ALB does: hop-by-hop headers
// dropped, X-Forwarded-* and X-Amzn-Trace-Id added, HTTP/1.1 keep-alive.
func writeRequest(bw *bufio.Writer, r *http.Request, trace, lbPort string) error {
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	xff := ""
	for k, vv := range r.Header {
		if hopByHop(k) || k == "Content-Length" || k == "X-Amzn-Trace-Id" || k == "X-Forwarded-Proto" || k == "X-Forwarded-Port" {
			continue
		}
		if k == "X-Forwarded-For" {
			if len(vv) > 0 {
				xff = vv[0] + ", "
			}
			continue
		}
		for _, v := range vv {
			writeHeader(bw, k, v)
		}
	}
	clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	writeHeader(bw, "X-Forwarded-For", xff+clientIP)
	writeHeader(bw, "X-Forwarded-Proto", "http")
	writeHeader(bw, "X-Forwarded-Port", lbPort)
	writeHeader(bw, "X-Amzn-Trace-Id", trace)
	chunked := false
	switch {
	case r.ContentLength > 0:
		writeHeader(bw, "Content-Length", strconv.FormatInt(r.ContentLength, 10))
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		writeHeader(bw, "Transfer-Encoding", "chunked")
		chunked = true
	}
	bw.WriteString("\r\n")
	if r.ContentLength > 0 {
		if _, err := io.CopyN(bw, r.Body, r.ContentLength); err != nil {
			return err
		}
	} else if chunked {
		if err := writeChunked(bw, r.Body); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func writeHeader(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

func writeChunked(bw *bufio.Writer, body io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for {
		n, err := body.Read(*bp)
		if n > 0 {
			bw.WriteString(strconv.FormatInt(int64(n), 16))
			bw.WriteString("\r\n")
			bw.Write((*bp)[:n])
			bw.WriteString("\r\n")
		}
		if err == io.EOF {
			_, err = bw.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}

// hopByHop reports headers that belong to one connection (RFC 9110 7.6.1).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// newTraceID makes an X-Amzn-Trace-Id root as the ALB does:
// version 1, the epoch seconds in hex, 96 random bits.
func newTraceID(now time.Time) string {
	// math/rand/v2: an id needs to be unique, not secret, and crypto/rand
	// can cost a syscall per request.
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(b[:])
}

// requestSize estimates the request's bytes on the wire (headers included),
// for the access log's received_bytes.
func requestSize(r *http.Request) int64 {
	n := int64(len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host) + 8 + 2)
	for k, vv := range r.Header {
		for _, v := range vv {
			n += int64(len(k) + len(v) + 4)
		}
	}
	if r.ContentLength > 0 {
		n += r.ContentLength
	}
	return n
}

func responseHeaderSize(resp *http.Response) int64 {
	n := int64(len(resp.Status) + 11)
	for k, vv := range resp.Header {
		for _, v := range vv {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}
