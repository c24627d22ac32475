package alb

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/rollsafe/rollsafe/observe/accesslog"
)

// logBuf holds one line being formatted and the scratch its Entry's byte
// fields point into, so logging a request allocates nothing in the steady state.
type logBuf struct {
	line, scratch []byte
}

var logBufs = sync.Pool{New: func() any { return &logBuf{line: make([]byte, 0, 1024), scratch: make([]byte, 0, 1024)} }}

// bytesOf copies s into the scratch and returns the copy. When the scratch
// grows, earlier slices keep pointing at the old array, which stays valid.
func (lb *logBuf) bytesOf(parts ...string) []byte {
	start := len(lb.scratch)
	for _, p := range parts {
		lb.scratch = append(lb.scratch, p...)
	}
	return lb.scratch[start:len(lb.scratch):len(lb.scratch)]
}

var (
	typeHTTP      = []byte("http")
	actionForward = []byte("forward")
)

// logRequest appends the request's access-log line, in the ALB's format.
func (lb *LB) logRequest(r *http.Request, ri *RequestInfo) {
	if lb.logW == nil {
		return
	}
	buf := logBufs.Get().(*logBuf)
	buf.scratch = buf.scratch[:0]
	port := ""
	if !hasPort(r.Host) {
		port = ":" + lb.port // the documented request field always carries the port
	}
	e := accesslog.Entry{
		Type:                   typeHTTP,
		Time:                   ri.Done.UTC(),
		ELB:                    lb.lbIDBytes,
		Client:                 buf.bytesOf(r.RemoteAddr),
		RequestProcessingTime:  accesslog.NoTime,
		TargetProcessingTime:   accesslog.NoTime,
		ResponseProcessingTime: accesslog.NoTime,
		ELBStatusCode:          ri.ELBStatus,
		TargetStatusCode:       ri.TargetStatus,
		ReceivedBytes:          ri.receivedBytes,
		SentBytes:              ri.sentBytes,
		Request:                buf.bytesOf(r.Method, " http://", r.Host, port, ri.URI, " ", r.Proto),
		UserAgent:              buf.bytesOf(r.UserAgent()),
		TargetGroupARN:         lb.tgARNBytes,
		TraceID:                buf.bytesOf(ri.TraceID),
		RequestCreationTime:    ri.Received.UTC(),
		ActionsExecuted:        actionForward,
	}
	if ri.Target != "" {
		// The ALB logs -1 for all three times when the target refused or
		// closed the connection or never answered; it logs them only for a
		// response. The target it tried is logged either way.
		e.Target = buf.bytesOf(ri.Target)
		e.TargetPortList = e.Target
		if !ri.Headers.IsZero() {
			e.RequestProcessingTime = ri.Sent.Sub(ri.Received)
			e.TargetProcessingTime = ri.Headers.Sub(ri.Sent)
			e.ResponseProcessingTime = 0
			n := len(buf.scratch)
			buf.scratch = strconv.AppendInt(buf.scratch, int64(ri.TargetStatus), 10)
			e.TargetStatusCodeList = buf.scratch[n:]
		}
	}
	buf.line = append(e.Append(buf.line[:0]), '\n')
	lb.logMu.Lock()
	_, err := lb.logW.Write(buf.line)
	lb.logFailed(err) // the request path cannot return it: Err and Close will
	lb.logMu.Unlock()
	logBufs.Put(buf)
}

func hasPort(host string) bool {
	for i := len(host) - 1; i >= 0; i-- {
		switch host[i] {
		case ':':
			return true
		case ']':
			return false
		}
	}
	return false
}
