package nlb

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/timeline"
)

// newHealthClient is the HTTP checks' client: a new connection per check and
// no redirects followed (a 3xx is judged by the matcher).
func newHealthClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// healthChecker runs the active health checks of one registration of t
// until stop is closed: a check at once, then one every Interval.
func (lb *LB) healthChecker(t *target, stop chan struct{}, gen uint64) {
	defer lb.wg.Done()
	addr := net.JoinHostPort(t.addr.IP, strconv.Itoa(lb.healthCheckPort(t.addr)))
	tick := time.NewTicker(lb.cfg.HealthCheck.Interval)
	defer tick.Stop()
	for {
		lb.applyCheck(t, gen, lb.check(t.addr.IP, addr))
		select {
		case <-stop:
			return
		case <-lb.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check sends one health check to addr (on ip) and reports whether it
// passed: for TCP, whether the connect succeeded within the timeout; for
// HTTP, whether the GET of Path answered a success code in time. A check of
// an unreachable ip waits out the timeout and fails.
func (lb *LB) check(ip, addr string) bool {
	hc := lb.cfg.HealthCheck
	if lb.reach.Unreachable(ip) {
		select {
		case <-time.After(hc.Timeout):
		case <-lb.ctx.Done():
		}
		return false
	}
	if hc.Protocol == ProtocolTCP {
		ctx, cancel := context.WithTimeout(lb.ctx, hc.Timeout)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(lb.ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := lb.hc.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return lb.codes.Match(resp.StatusCode)
}

// applyCheck moves t through initial/healthy/unhealthy by the thresholds,
// records a change of state or reason, and, when t turns unhealthy
// (Attributes.UnhealthyConnectionTermination) without making the LB fail
// open, ends its connections the way the NLB does: the next packet either
// end sends on one is answered with a reset.
func (lb *LB) applyCheck(t *target, gen uint64, passed bool) {
	lb.mu.Lock()
	if t.gen != gen || lb.closed {
		lb.mu.Unlock()
		return // deregistered (or re-registered) while the check ran
	}
	hc := lb.cfg.HealthCheck
	old, oldReason := t.health, t.reason
	t.health = t.runs.Next(old, passed, hc.HealthyThreshold, hc.UnhealthyThreshold)
	switch t.health {
	case alb.StateHealthy:
		t.reason = ""
	case alb.StateUnhealthy:
		t.reason = alb.ReasonFailedHealthChecks // the only failure reason an NLB reports
	default:
		t.reason = alb.ReasonInitialHealthChecking
	}
	var rec *timeline.Record
	if t.health != old || t.reason != oldReason {
		rec = lb.record(t)
	}
	var cut []*flow
	if t.health == alb.StateUnhealthy && old != alb.StateUnhealthy && lb.attrs.UnhealthyConnectionTermination && !lb.failsOpen() {
		cut = lb.flowsOf(t)
	}
	lb.mu.Unlock()
	if rec != nil {
		lb.emit(rec)
	}
	for _, f := range cut {
		f.expire(EndUnhealthyTermination)
	}
}
