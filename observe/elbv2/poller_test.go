package elbv2

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/alb/elbv2api"
	"github.com/rollsafe/rollsafe/lab/nlb"
	"github.com/rollsafe/rollsafe/timeline"
)

// These tests run the real aws-sdk-go-v2 ELBv2 client, built by New from the
// standard credential/region chain (environment variables here), against the
// lab's ELBv2 API over a running lab load balancer with a real backend on
// loopback: AWS itself is the only thing replaced.

const scale = 0.001 // 1 API second = 1 ms of lab time

// labLB is what these tests drive on either lab load balancer.
type labLB interface {
	elbv2api.TargetGroup
	TargetGroupARN() string
}

type lab struct {
	lb      labLB
	api     *elbv2api.Server
	backend alb.Target
	ready   atomic.Bool // the backend answers health checks only once ready
	release chan struct{}
	once    sync.Once
}

// setReady lets the backend answer, including checks it is holding.
func (l *lab) setReady() {
	l.ready.Store(true)
	l.once.Do(func() { close(l.release) })
}

// startLab runs an ALB stand-in in front of a held backend (setReady), and
// the API over it.
func startLab(t *testing.T) *lab { return startLabWith(t, newALB) }

// startLabWith is startLab with the load balancer newLB returns.
func startLabWith(t *testing.T, newLB func(*testing.T) labLB) *lab {
	t.Helper()
	l := &lab{release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.31:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Until ready, hold the health check past its timeout: the target
		// stays "initial" however fast or slow this machine is.
		if !l.ready.Load() {
			select {
			case <-l.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { l.setReady(); srv.Close() })

	lb := newLB(t)
	// Cleanups run last first: release held checks before the LB closes, or
	// Close waits for each to time out.
	t.Cleanup(l.setReady)
	api := elbv2api.New(lb, elbv2api.Options{TimeScale: scale})
	if err := api.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	l.lb, l.api = lb, api
	l.backend = alb.Target{IP: "127.0.0.31", Port: ln.Addr().(*net.TCPAddr).Port}
	return l
}

// newALB is an ALB stand-in whose health checks outwait a held backend.
func newALB(t *testing.T) labLB {
	cfg := alb.DefaultConfig()
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.Timeout = 10 * time.Second
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationDelay = 3600 * time.Millisecond
	cfg.Propagation = 0
	cfg.Nodes = 1
	lb, err := alb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	return lb
}

// newNLB is an NLB stand-in with an HTTP health check (a TCP one would
// pass on a held backend), outwaiting a held backend like newALB's.
func newNLB(t *testing.T) labLB {
	cfg := nlb.DefaultConfig()
	cfg.HealthCheck.Protocol = nlb.ProtocolHTTP
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.Timeout = 10 * time.Second
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationDelay = 3600 * time.Millisecond
	cfg.DeregistrationPropagation = 0
	lb, err := nlb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	return lb
}

// awsEnv points the standard chain at static test credentials and nothing else.
func awsEnv(t *testing.T, region string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLAB")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "lab-secret")
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// pollUntil polls until a record satisfies ok, returning every record seen.
// The deadline only bounds a broken run; nothing asserts on durations.
func pollUntil(t *testing.T, p *Poller, ok func(timeline.Record) bool) []timeline.Record {
	t.Helper()
	var all []timeline.Record
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		recs, err := p.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		for _, r := range recs {
			if ok(r) {
				return all
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("condition never met; records %+v", all)
	return nil
}

func isTarget(state string) func(timeline.Record) bool {
	return func(r timeline.Record) bool { return r.Kind == timeline.KindTarget && r.State == state }
}

// The poller sees a target's lifecycle the same way on either load
// balancer: absent, initial, healthy, draining, gone.
func TestPollerRecordsTheTargetLifecycle(t *testing.T) {
	t.Run("alb", func(t *testing.T) { testLifecycle(t, startLabWith(t, newALB)) })
	t.Run("nlb", func(t *testing.T) { testLifecycle(t, startLabWith(t, newNLB)) })
}

func testLifecycle(t *testing.T, l *lab) {
	awsEnv(t, "us-east-2")
	p, err := New(context.Background(), Config{TargetGroupARN: l.lb.TargetGroupARN(), Endpoint: l.api.URL()})
	if err != nil {
		t.Fatal(err)
	}
	key := l.backend.String()

	// First poll: no target yet; the attributes are reported once.
	recs, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Kind != timeline.KindEvent || recs[0].Source != Source ||
		recs[0].Attrs["deregistration_delay.timeout_seconds"] != "3600" {
		t.Fatalf("first poll: %+v", recs)
	}
	if recs, _ := p.Poll(context.Background()); len(recs) != 0 {
		t.Fatalf("nothing changed, yet %+v", recs)
	}

	// Registered, health checks held: initial.
	if err := l.lb.Register(l.backend); err != nil {
		t.Fatal(err)
	}
	recs, err = p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Object != key || recs[0].State != "initial" || recs[0].Kind != timeline.KindTarget ||
		recs[0].Attrs["target_group"] != l.lb.TargetGroupARN() || recs[0].Attrs["prev_poll"] == "" {
		t.Fatalf("after register: %+v", recs)
	}
	initialAt := recs[0].Time

	// Health checks pass: healthy, reason cleared.
	l.setReady()
	recs = pollUntil(t, p, isTarget("healthy"))
	last := recs[len(recs)-1]
	if last.Object != key || last.Reason != "" || !last.Time.After(initialAt) {
		t.Fatalf("healthy record %+v", last)
	}

	// Shorter deregistration delay: one event with the new value.
	if err := l.lb.SetTargetGroupAttributes(alb.Attribute{Key: "deregistration_delay.timeout_seconds", Kind: alb.AttrDuration, Duration: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	recs, err = p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Kind != timeline.KindEvent || recs[0].Attrs["deregistration_delay.timeout_seconds"] != "150" {
		t.Fatalf("after attribute change: %+v", recs)
	}

	// Deregistered: draining with the API's reason, then gone → unused.
	if err := l.lb.Deregister(l.backend); err != nil {
		t.Fatal(err)
	}
	recs, err = p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].State != "draining" || recs[0].Reason != "Target.DeregistrationInProgress" ||
		recs[0].Attrs["description"] != "Target deregistration is in progress" {
		t.Fatalf("after deregister: %+v", recs)
	}
	recs = pollUntil(t, p, isTarget("unused"))
	last = recs[len(recs)-1]
	if last.Object != key || last.Reason != ReasonGone || last.Attrs["gone"] != "true" {
		t.Fatalf("gone record %+v", last)
	}
	for _, r := range recs[:len(recs)-1] {
		t.Errorf("unexpected record while draining: %+v", r)
	}
}

// fastPoller registers the lab's backend and polls its target group every 10 ms.
func fastPoller(t *testing.T, l *lab) *Poller {
	t.Helper()
	awsEnv(t, "us-east-2")
	if err := l.lb.Register(l.backend); err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), Config{TargetGroupARN: l.lb.TargetGroupARN(), Endpoint: l.api.URL(),
		Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunEmitsAndStopsOnCancel(t *testing.T) {
	l := startLab(t)
	l.setReady()
	p := fastPoller(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan timeline.Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, func(r *timeline.Record) error { got <- *r; return nil })
	}()
	// Wait for the healthy transition, then stop.
	timeout := time.After(30 * time.Second)
	for healthy := false; !healthy; {
		select {
		case r := <-got:
			healthy = r.Kind == timeline.KindTarget && r.State == "healthy"
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-timeout:
			t.Fatal("no healthy record")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// A sink error ends Run with that error, and nothing more reaches the sink.
func TestRunStopsOnSinkError(t *testing.T) {
	p := fastPoller(t, startLab(t))
	boom := errors.New("disk full")
	calls := 0
	err := p.Run(context.Background(), func(*timeline.Record) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("Run: err %v after %d records, want disk full after 1", err, calls)
	}
}

func TestErrorsAreClear(t *testing.T) {
	l := startLab(t)
	awsEnv(t, "us-east-2")
	bad := strings.Replace(l.lb.TargetGroupARN(), "targetgroup/", "targetgroup/nope-", 1)
	p, err := New(context.Background(), Config{TargetGroupARN: bad, Endpoint: l.api.URL()})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(context.Background(), func(*timeline.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "TargetGroupNotFound") || !strings.Contains(err.Error(), bad) {
		t.Errorf("wrong ARN: err = %v", err)
	}

	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "ARN is required") {
		t.Errorf("no ARN: err = %v", err)
	}
	awsEnv(t, "")
	if _, err := New(context.Background(), Config{TargetGroupARN: bad}); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("no region: err = %v", err)
	}
}
