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
	if !lb.matcher.Match(resp.StatusCode) {
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
	passed := reason == ""
	if !passed {
		t.lastCode = code
	}
	hc := lb.cfg.HealthCheck
	h := healthCode[t.runs.Next(healthState[oldHealth], passed, hc.HealthyThreshold, hc.UnhealthyThreshold)]
	switch {
	case h == hHealthy:
		t.reason = ""
	case h == hUnhealthy && !passed:
		t.reason = reason
	case h == hInitial:
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

// HealthRuns counts a target's consecutive health-check results and says
// which state they leave it in, by the target group's HealthyThresholdCount
// and UnhealthyThresholdCount. Package nlb's health checks use it too. The
// zero value is a fresh registration.
type HealthRuns struct{ ok, fail int }

// Next counts one check of a target in state cur (passed or failed) and
// returns its state after it: healthy after healthy consecutive passes,
// unhealthy after unhealthy consecutive failures, cur otherwise.
func (r *HealthRuns) Next(cur State, passed bool, healthy, unhealthy int) State {
	if passed {
		r.ok, r.fail = r.ok+1, 0
		if r.ok >= healthy {
			return StateHealthy
		}
		return cur
	}
	r.fail, r.ok = r.fail+1, 0
	if r.fail >= unhealthy {
		return StateUnhealthy
	}
	return cur
}
