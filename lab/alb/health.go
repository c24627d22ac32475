package alb

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// healthChecker runs the active health checks of one registration of t
// until stop is closed: a check at once, then one every Interval.
func (lb *LB) healthChecker(t *target, stop chan struct{}, gen uint64) {
	defer lb.wg.Done()
	url := "http://" + net.JoinHostPort(t.addr.IP, strconv.Itoa(lb.healthCheckPort(t.addr))) + lb.cfg.HealthCheck.Path
	tick := time.NewTicker(lb.cfg.HealthCheck.Interval)
	defer tick.Stop()
	for {
		code, reason := lb.check(url, stop)
		if rec := lb.applyCheck(t, gen, code, reason); rec != nil {
			lb.emit([]*timeline.Record{rec})
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// check sends one health check. reason is empty on success, else the
// ELBv2 reason code the failure maps to.
func (lb *LB) check(url string, stop chan struct{}) (code int, reason string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, ReasonFailedHealthChecks
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := lb.hc.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, ReasonTimeout
		}
		return 0, ReasonFailedHealthChecks
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !lb.matcher.match(resp.StatusCode) {
		return resp.StatusCode, ReasonResponseCodeMismatch
	}
	return resp.StatusCode, ""
}

// applyCheck moves t through initial/healthy/unhealthy by the thresholds
// and returns a record when its state or reason changed.
func (lb *LB) applyCheck(t *target, gen uint64, code int, reason string) *timeline.Record {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if t.gen != gen || lb.closed {
		return nil // deregistered (or re-registered) while the check ran
	}
	oldHealth, oldReason := t.health.Load(), t.reason
	h := oldHealth
	if reason == "" {
		t.okRun++
		t.failRun = 0
		if h != hHealthy && t.okRun >= lb.cfg.HealthCheck.HealthyThreshold {
			h, t.reason = hHealthy, ""
		}
	} else {
		t.failRun++
		t.okRun = 0
		t.lastCode = code
		if h != hUnhealthy && t.failRun >= lb.cfg.HealthCheck.UnhealthyThreshold {
			h = hUnhealthy
		}
		if h == hUnhealthy {
			t.reason = reason
		}
	}
	if h == hInitial {
		t.reason = ReasonInitialHealthChecking
	}
	if h != oldHealth {
		t.health.Store(h)
		lb.rebuildAll()
	}
	if h == oldHealth && t.reason == oldReason {
		return nil
	}
	return lb.record(t)
}
