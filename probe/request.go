package probe

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// requester sends one request and turns what happened into a Record.
type requester struct {
	cfg        *Config
	u          *url.URL
	headers    http.Header // user headers without Host
	host       string      // Host header override, if the user set one
	userTrace  string      // the user's own X-Amzn-Trace-Id, if any
	replicaKey string      // canonical form of cfg.ReplicaHeader
	versionKey string
	traces     traceIDs
}

func newRequester(cfg *Config, u *url.URL) *requester {
	q := &requester{cfg: cfg, u: u, headers: http.Header{}, traces: newTraceIDs(cfg.RunID),
		replicaKey: textproto.CanonicalMIMEHeaderKey(cfg.ReplicaHeader)}
	if cfg.VersionHeader != "" {
		q.versionKey = textproto.CanonicalMIMEHeaderKey(cfg.VersionHeader)
	}
	for k, v := range cfg.Headers {
		switch ck := textproto.CanonicalMIMEHeaderKey(k); ck {
		case "Host":
			q.host = v[0]
		case TraceHeader:
			q.userTrace = v[0]
			q.headers[ck] = v
		default:
			q.headers[ck] = v
		}
	}
	return q
}

// emptyBody stands in for "no body". net/http retries a failed request on a
// reused keep-alive connection by itself when the request is replayable
// (GET/HEAD/OPTIONS/TRACE with a nil Body, or any request with GetBody) or
// when nothing was written and the body is empty — so a request that hit a
// connection the server was closing would fail and then silently succeed
// on a new connection, hiding exactly the keep-alive race the probe exists
// to count. A non-nil Body without GetBody makes every request
// non-replayable (Request.isReplayable, persistConn.shouldRetryRequest,
// http2shouldRetryRequest), so the caller sees the one attempt a client
// sees. TransferEncoding "identity" (documented on Request.Write) keeps the
// wire as with a nil Body: no Content-Length, no chunking, and no
// per-request goroutine probing the body for emptiness. Over h2 the stream
// ends with an empty DATA frame instead of on HEADERS. Tests check both the
// absence of retries and the bytes on the wire.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// WriteTo lets io.Copy skip the 32 KiB buffer it would otherwise allocate
// per request when the connection's ReadFrom falls back to a plain copy.
func (emptyBody) WriteTo(io.Writer) (int64, error) { return 0, nil }

var identity = []string{"identity"} // never modified by net/http

// do sends request seq, due at sched (zero when unscheduled), and returns its record.
func (q *requester) do(seq uint64, sched time.Time, buf []byte, rt http.RoundTripper) *timeline.Record {
	rec := &timeline.Record{
		Kind: timeline.KindRequest, Source: q.cfg.Source, Scenario: q.cfg.Scenario,
		Seq: seq, Method: q.cfg.Method, Scheduled: sched,
	}
	h := make(http.Header, len(q.headers)+1)
	for k, v := range q.headers {
		h[k] = v
	}
	start := time.Now()
	rec.Time = start
	if q.userTrace != "" {
		rec.TraceID = q.userTrace
	} else {
		rec.TraceID = q.traces.id(start, seq)
		h[TraceHeader] = []string{rec.TraceID}
	}
	req := &http.Request{
		Method: q.cfg.Method, URL: q.u, Host: q.host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: emptyBody{}, TransferEncoding: identity,
	}
	if len(q.cfg.Body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(q.cfg.Body)) // no GetBody: see emptyBody
		req.ContentLength = int64(len(q.cfg.Body))
		req.TransferEncoding = nil
	}
	var resp *http.Response
	var err error
	if h1, ok := rt.(*h1Conn); ok {
		// The connection's deadline bounds the exchange, body included:
		// no context (and its timer) per request.
		resp, err = h1.exchange(req, start.Add(q.cfg.Timeout))
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), q.cfg.Timeout)
		defer cancel() // after the body is read: the timeout covers it
		resp, err = rt.RoundTrip(req.WithContext(ctx))
	}
	if err == nil {
		rec.Status = resp.StatusCode
		rec.Replica = first(resp.Header[q.replicaKey])
		if q.versionKey != "" {
			rec.Version = first(resp.Header[q.versionKey])
		}
		rec.Bytes, err = q.readBody(resp.Body, rec, buf)
		resp.Body.Close()
	}
	end := time.Now()
	base := start
	if !sched.IsZero() {
		base = sched
	}
	rec.Latency = end.Sub(base)
	if err != nil {
		rec.Class = Classify(err)
		rec.Error = err.Error()
	} else {
		rec.Class = timeline.ClassOfStatus(rec.Status)
	}
	return rec
}

// readBody drains the body, keeping its head when the version comes from a regex.
func (q *requester) readBody(body io.Reader, rec *timeline.Record, buf []byte) (int64, error) {
	if q.versionKey != "" || q.cfg.VersionRegex == nil {
		// Hide WriterTo/ReaderFrom so the worker's buffer is used, not a pool's.
		return io.CopyBuffer(io.Discard, struct{ io.Reader }{body}, buf)
	}
	head, err := io.ReadAll(io.LimitReader(body, MaxVersionBody))
	n := int64(len(head))
	if err != nil {
		return n, err
	}
	rec.Version = matchVersion(q.cfg, head)
	rest, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{body}, buf)
	return n + rest, err
}

func matchVersion(cfg *Config, body []byte) string {
	m := cfg.VersionRegex.FindSubmatch(body)
	switch {
	case m == nil:
		return ""
	case len(m) > 1:
		return string(m[1])
	default:
		return string(m[0])
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
