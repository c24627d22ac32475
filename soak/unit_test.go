package soak

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/timeline"
)

func TestParseTrigger(t *testing.T) {
	good := map[string]Trigger{
		"annotation":  {Kind: TriggerAnnotation},
		"env:VERSION": {Kind: TriggerEnv, Env: "VERSION"},
		"arg:1":       {Kind: TriggerArg, Index: 1},
	}
	for in, want := range good {
		if got, err := ParseTrigger(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseTrigger(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "env:", "env:A=B", "arg:x", "arg:-1", "annotation:x", "image"} {
		if _, err := ParseTrigger(in); err == nil {
			t.Errorf("ParseTrigger(%q): want an error", in)
		}
	}
}

func dep(c corev1.Container) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	d.Name, d.Namespace = "web", "ns"
	d.Spec.Template.Spec.Containers = []corev1.Container{c}
	return d
}

func TestTriggerNextContinuesTheSequence(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	d := dep(corev1.Container{Name: "api", Args: []string{"dummy", "41"}, Env: []corev1.EnvVar{{Name: "VERSION", Value: "v1"}}})
	p, err := Trigger{Kind: TriggerArg, Index: 1}.next(d, now)
	if err != nil || p.seq != 42 || string(p.typ) != "application/json-patch+json" ||
		string(p.data) != `[{"op":"test","path":"/spec/template/spec/containers/0/args/1","value":"41"},{"op":"replace","path":"/spec/template/spec/containers/0/args/1","value":"42"}]` {
		t.Fatalf("arg: %+v %s %v", p, p.data, err)
	}
	// Not a number: start at 1.
	p, err = Trigger{Kind: TriggerEnv, Env: "VERSION"}.next(d, now)
	if err != nil || p.seq != 1 || string(p.data) != `{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"VERSION","value":"1"}],"name":"api"}]}}}}` {
		t.Fatalf("env: %+v %s %v", p, p.data, err)
	}
	p, err = Trigger{Kind: TriggerAnnotation}.next(d, now)
	if err != nil || !strings.Contains(string(p.data), `"rollsafe.dev/restartedAt":"2026-01-02T03:04:05.000000006Z"`) {
		t.Fatalf("annotation: %s %v", p.data, err)
	}
	if _, err := (Trigger{Kind: TriggerArg, Index: 2}).next(d, now); err == nil || !strings.Contains(err.Error(), "has 2 args, no index 2") {
		t.Fatalf("arg out of range: %v", err)
	}
	d.Spec.Template.Spec.Containers[0].Env[0] = corev1.EnvVar{Name: "VERSION", ValueFrom: &corev1.EnvVarSource{}}
	if _, err := (Trigger{Kind: TriggerEnv, Env: "VERSION"}).next(d, now); err == nil || !strings.Contains(err.Error(), "valueFrom") {
		t.Fatalf("valueFrom: %v", err)
	}
}

func req(at time.Time, class timeline.Class, version string) *timeline.Record {
	return &timeline.Record{Kind: timeline.KindRequest, Time: at, Class: class, Version: version}
}

// The tally attributes each request by its send time, reports rollouts in
// order, and a window's late completions still land in it.
func TestTallyAttributesBySendTime(t *testing.T) {
	var got []Result
	tl := newTally(nil, time.Hour, func(r *Result) { got = append(got, *r) }, nil)
	t0 := time.Unix(1000, 0)
	tl.request(req(t0.Add(-2*time.Second), timeline.ClassHTTP503, "")) // before the URL ever answered
	tl.request(req(t0.Add(-2*time.Second), timeline.ClassOK, ""))
	tl.request(req(t0.Add(-time.Second), timeline.ClassHTTP503, "")) // answered once: a loss, before any rollout
	w1 := tl.open(1, t0)
	tl.expect(w1, map[string]bool{"1": true}, false)
	tl.request(req(t0.Add(1*time.Second), timeline.ClassOK, "0"))
	tl.request(req(t0.Add(2*time.Second), timeline.ClassHTTP502, ""))
	tl.request(req(t0.Add(3*time.Second), timeline.ClassOK, "1"))
	tl.close(w1, t0.Add(10*time.Second))
	w2 := tl.open(2, t0.Add(10*time.Second))
	// Sent in window 1, completing after window 2 opened.
	tl.request(req(t0.Add(9*time.Second), timeline.ClassConnReset, ""))
	tl.request(req(t0.Add(11*time.Second), timeline.ClassOK, "1"))
	select {
	case <-w1.seenCh:
	default:
		t.Fatal("window 1 should have seen version 1")
	}
	tl.close(w2, t0.Add(20*time.Second))
	tl.finalizeAll(t0.Add(30 * time.Second))
	if len(got) != 2 || got[0].Rollout != 1 || got[1].Rollout != 2 {
		t.Fatalf("results out of order or missing: %+v", got)
	}
	r1 := got[0]
	if r1.Requests != 4 || r1.Lost != 2 || r1.Failures[timeline.ClassHTTP502] != 1 || r1.Failures[timeline.ClassConnReset] != 1 ||
		r1.NewVersionSeenAfter == nil || *r1.NewVersionSeenAfter != 3 || r1.Result != OutcomeLost {
		t.Fatalf("rollout 1: %+v", r1)
	}
	if got[1].Requests != 1 || got[1].Lost != 0 || got[1].NewVersionSeenAfter != nil {
		t.Fatalf("rollout 2: %+v", got[1])
	}
	tot := tl.snapshot()
	if tot.Requests != 7 || tot.Lost != 3 || tot.BeforeReady != 1 || tot.Unattributed[timeline.ClassHTTP503] != 1 || tot.LostRollout != 1 {
		t.Fatalf("total: %+v", tot)
	}
	b, _ := json.Marshal(got[1])
	if !strings.Contains(string(b), `"new_version_seen_after_s":null`) || !strings.Contains(string(b), `"error":""`) {
		t.Fatalf("json: %s", b)
	}
}

// Finalized windows are dropped: the tally holds no more state after 10,000
// rollouts than after one.
func TestTallyForgetsFinishedRollouts(t *testing.T) {
	tl := newTally(nil, time.Hour, nil, nil)
	t0 := time.Unix(0, 0)
	for i := range 10000 {
		at := t0.Add(time.Duration(i) * time.Second)
		w := tl.open(i+1, at)
		tl.request(req(at, timeline.ClassOK, "x"))
		tl.close(w, at.Add(time.Second))
		tl.finalizeThrough(w)
	}
	if len(tl.windows) != 0 || tl.total.Rollouts != 10000 {
		t.Fatalf("windows kept: %d, rollouts %d", len(tl.windows), tl.total.Rollouts)
	}
}

func sampleResult() *Result {
	s := 2.5
	start := time.Unix(100, 0)
	return &Result{Rollout: 1, Started: start, Complete: start.Add(4 * time.Second), Seconds: 4, Lost: 2,
		NewVersionSeenAfter: &s, Result: OutcomeLost, Failures: map[timeline.Class]uint64{timeline.ClassHTTP502: 2}}
}

func TestPrometheusMetricsOverHTTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg)
	if err != nil {
		t.Fatal(err)
	}
	p.Request(timeline.ClassOK)
	p.Request(timeline.ClassHTTP502)
	p.Request(timeline.ClassHTTP502)
	p.Rollout(sampleResult())
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`rollsafe_soak_requests_total{class="http_502"} 2`,
		`rollsafe_soak_requests_total{class="conn_reset"} 0`,
		`rollsafe_soak_rollouts_total{result="lost_requests"} 1`,
		`rollsafe_soak_rollouts_total{result="clean"} 0`,
		`rollsafe_soak_rollout_duration_seconds_sum 4`,
		`rollsafe_soak_new_version_seen_seconds_sum 2.5`,
		`rollsafe_soak_rollout_lost_requests 2`,
		`rollsafe_soak_lost_requests_total 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// StatsD through the real datadog-go client to a real UDP socket.
func TestStatsDOverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	client, err := statsd.New(pc.LocalAddr().String(), statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation())
	if err != nil {
		t.Fatal(err)
	}
	s := NewStatsD(client, "deployment:web")
	var sendErr error
	s.OnError = func(err error) { sendErr = err }
	s.Request(timeline.ClassHTTP504)
	s.Rollout(sampleResult())
	if err := client.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	var lines []string
	buf := make([]byte, 65536)
	for len(lines) < 5 {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(buf[:n])), "\n")...)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"rollsafe.soak.request:1|c|#deployment:web,class:http_504",
		"rollsafe.soak.rollout:1|c|#deployment:web,result:lost_requests",
		"rollsafe.soak.rollout.duration:4000.000000|ms|#deployment:web",
		"rollsafe.soak.rollout.version_seen:2500.000000|ms|#deployment:web",
		"rollsafe.soak.rollout.lost_requests:2|g|#deployment:web",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statsd lacks %q in\n%s", want, all)
		}
	}
}
