package alb

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// unreachableConfig checks a target once at registration (healthy at once)
// and then not again, so the proxy's behaviour towards an unreachable IP is
// not mixed with the health checker's.
func unreachableConfig(rec *recorder, log io.Writer) Config {
	cfg := testConfig(rec, log)
	cfg.HealthCheck.Interval = time.Hour
	cfg.HealthCheck.HealthyThreshold = 1
	cfg.ConnectTimeout = 200 * time.Millisecond
	return cfg
}

// timedGet is get with the time the answer took.
func timedGet(t *testing.T, url string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	code, _, _ := get(t, url)
	return code, time.Since(start)
}

func TestUnreachableTargetIs504AfterConnectTimeout(t *testing.T) {
	b := startBackends(t, "127.0.0.40")[0]
	cfg, rec, log := recorded(unreachableConfig)
	lb := newLB(t, cfg)
	registerHealthy(t, lb, b)

	// The pod is deleted: its IP leaves the network while the process
	// would still accept (so a refusal cannot be what answers).
	if err := lb.SetReachable("127.0.0.40", false); err != nil {
		t.Fatal(err)
	}
	code, took := timedGet(t, lb.URL()+"/")
	if code != http.StatusGatewayTimeout {
		t.Fatalf("unreachable target: status %d, want 504", code)
	}
	if took < cfg.ConnectTimeout {
		t.Fatalf("504 after %v, before the %v connect timeout", took, cfg.ConnectTimeout)
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("the unreachable target got %d requests", n)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrConnectTimeout || ri.ELBStatus != 504 || ri.TargetStatus != 0 || !ri.Sent.IsZero() ||
		ri.Target != b.target.String() || ri.Cause != timeline.CauseTargetTimeout {
		t.Fatalf("request info %+v", ri)
	}
	es := logEntries(t, lb, log)
	e := es[len(es)-1]
	if e.ELBStatusCode != 504 || e.TargetStatusCode != 0 || string(e.Target) != b.target.String() ||
		e.RequestProcessingTime >= 0 || e.TargetProcessingTime >= 0 || e.ResponseProcessingTime >= 0 {
		t.Fatalf("access log: %s", e.String())
	}
	// Seed 000's line, field for field: target, -1 -1 -1, 504, "-".
	line := strings.TrimSpace(log.String())
	if want := b.target.String() + " -1 -1 -1 504 - "; !strings.Contains(line, want) {
		t.Fatalf("access log %q lacks %q", line, want)
	}

	// A new pod holds the IP again: traffic flows.
	if err := lb.SetReachable("127.0.0.40", true); err != nil {
		t.Fatal(err)
	}
	if got := statuses(t, lb, 3); got[200] != 3 {
		t.Fatalf("reachable again: statuses %v, want 3 200s", got)
	}
}

func TestUnreachableDrainingTargetIsGone(t *testing.T) {
	b := startBackends(t, "127.0.0.41")[0]
	rec := &recorder{}
	lb := newLB(t, unreachableConfig(rec, nil))
	registerHealthy(t, lb, b)
	// The node never learns of the deregistration during the test: it keeps
	// routing to the draining target, as ALB nodes do for a while.
	lb.SetPropagation(time.Hour)
	lb.Deregister(b.target)
	// A non-canonical spelling of the same IP is the same IP.
	if err := lb.SetReachable("::ffff:127.0.0.41", false); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, lb.URL()+"/"); code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", code)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrConnectTimeout || ri.TargetState != StateDraining || ri.Cause != timeline.CauseDrainingTargetGone {
		t.Fatalf("request info %+v", ri)
	}
}

func TestUnreachableCancelledClientIsNot504(t *testing.T) {
	bs := startBackends(t, "127.0.0.42")
	cfg, rec, log := recorded(unreachableConfig)
	cfg.ConnectTimeout = time.Minute // the client gives up long before
	lb := newLB(t, cfg)
	registerHealthy(t, lb, bs[0])
	lb.SetReachable("127.0.0.42", false)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lb.URL()+"/", nil)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request got a response")
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(rec.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ri := lastRequest(t, rec)
	if ri.Err != ErrClientClosed || ri.ELBStatus != StatusClientClosed || ri.Cause != "" {
		t.Fatalf("cancelled client: %+v, want client_closed 460", ri)
	}
	for _, e := range logEntries(t, lb, log) {
		if e.ELBStatusCode == 504 {
			t.Fatalf("cancelled client logged a 504: %s", e.String())
		}
	}
}

func TestUnreachableHealthCheckTimesOut(t *testing.T) {
	b := startBackends(t, "127.0.0.43")[0]
	cfg := testConfig(nil, nil)
	cfg.HealthCheck.Timeout = 100 * time.Millisecond
	lb := newLB(t, cfg)
	registerHealthy(t, lb, b)
	lb.SetReachable("127.0.0.43", false)
	waitState(t, lb, b.target, StateUnhealthy)
	// The process still listens: only a check that went unanswered, not a
	// refused one, explains the reason.
	if th := lb.HealthOf(b.target); th.Reason != ReasonTimeout {
		t.Fatalf("unhealthy with %+v, want reason %s", th, ReasonTimeout)
	}
	lb.SetReachable("127.0.0.43", true)
	waitState(t, lb, b.target, StateHealthy)
}

func TestSetReachableBadInput(t *testing.T) {
	lb := newLB(t, testConfig(nil, nil))
	for _, ip := range []string{"", "not-an-ip", "10.1.2.3"} {
		if err := lb.SetReachable(ip, false); err == nil {
			t.Errorf("SetReachable(%q) accepted", ip)
		}
	}
}
