package alb

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/rollsafe/rollsafe/accesslog"
)

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

var (
	typeHTTP      = []byte("http")
	actionForward = []byte("forward")
)

// logRequest appends the request's access-log line, in the ALB's format.
func (lb *LB) logRequest(r *http.Request, ri *RequestInfo) {
	if lb.logW == nil {
		return
	}
	host := r.Host
	if !hasPort(host) {
		host += ":" + lb.port // the documented request field always carries the port
	}
	e := accesslog.Entry{
		Type:                   typeHTTP,
		Time:                   ri.Done.UTC(),
		ELB:                    []byte(lb.lbID),
		Client:                 []byte(r.RemoteAddr),
		RequestProcessingTime:  accesslog.NoTime,
		TargetProcessingTime:   accesslog.NoTime,
		ResponseProcessingTime: accesslog.NoTime,
		ELBStatusCode:          ri.ELBStatus,
		TargetStatusCode:       ri.TargetStatus,
		ReceivedBytes:          ri.receivedBytes,
		SentBytes:              ri.sentBytes,
		Request:                []byte(r.Method + " http://" + host + ri.URI + " " + r.Proto),
		UserAgent:              []byte(r.UserAgent()),
		TargetGroupARN:         []byte(lb.tgARN),
		TraceID:                []byte(ri.TraceID),
		RequestCreationTime:    ri.Received.UTC(),
		ActionsExecuted:        actionForward,
	}
	if ri.Target != "" {
		// The ALB logs -1 for all three times when the target refused or
		// closed the connection or never answered; it logs them only for a
		// response. The target it tried is logged either way.
		e.Target = []byte(ri.Target)
		e.TargetPortList = e.Target
		if !ri.Headers.IsZero() {
			e.RequestProcessingTime = ri.Sent.Sub(ri.Received)
			e.TargetProcessingTime = ri.Headers.Sub(ri.Sent)
			e.ResponseProcessingTime = 0
			e.TargetStatusCodeList = []byte(strconv.Itoa(ri.TargetStatus))
		}
	}
	bp := lineBufs.Get().(*[]byte)
	b := append(e.Append((*bp)[:0]), '\n')
	lb.logMu.Lock()
	lb.logW.Write(b)
	lb.logMu.Unlock()
	*bp = b
	lineBufs.Put(bp)
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
