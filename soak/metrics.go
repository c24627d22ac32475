package soak

import (
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollsafe/rollsafe/timeline"
)

// Metrics receives soak's measurements as they happen. Request is called
// from the prober's goroutine for every request, Rollout once per finished
// rollout; both under soak's lock, so implementations need none.
type Metrics interface {
	Request(class timeline.Class)
	Rollout(r *Result)
}

// MultiMetrics sends to every one of ms.
type MultiMetrics []Metrics

func (ms MultiMetrics) Request(c timeline.Class) {
	for _, m := range ms {
		m.Request(c)
	}
}

func (ms MultiMetrics) Rollout(r *Result) {
	for _, m := range ms {
		m.Rollout(r)
	}
}

// Prometheus metric names (documented in docs/soak.md; never rename one).
const (
	PromRollouts        = "rollsafe_soak_rollouts_total"
	PromRequests        = "rollsafe_soak_requests_total"
	PromRolloutDuration = "rollsafe_soak_rollout_duration_seconds"
	PromVersionSeen     = "rollsafe_soak_new_version_seen_seconds"
	PromLastLost        = "rollsafe_soak_rollout_lost_requests"
	PromLostTotal       = "rollsafe_soak_lost_requests_total"
)

// Prometheus holds soak's Prometheus collectors.
type Prometheus struct {
	rollouts    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	duration    prometheus.Histogram
	versionSeen prometheus.Histogram
	lastLost    prometheus.Gauge
	lostTotal   prometheus.Counter
}

// rolloutBuckets span a rollout from seconds (the lab, time-scaled) to the
// quarter hour a slow EKS rollout with long preStop hooks can take.
var rolloutBuckets = []float64{1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 900}

// NewPrometheus registers soak's collectors with reg. Every result and
// class label starts at zero, so a rate() over a fresh run is defined.
func NewPrometheus(reg prometheus.Registerer) (*Prometheus, error) {
	p := &Prometheus{
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: PromRollouts,
			Help: "Rollouts finished, by result: clean, lost_requests, failed, interrupted."}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: PromRequests,
			Help: "Probe requests sent, by class: ok or a failure class."}, []string{"class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: PromRolloutDuration,
			Help: "Seconds from the pod-template patch until the rollout was complete.", Buckets: rolloutBuckets}),
		versionSeen: prometheus.NewHistogram(prometheus.HistogramOpts{Name: PromVersionSeen,
			Help: "Seconds from the pod-template patch until the new version first answered through the URL.", Buckets: rolloutBuckets}),
		lastLost: prometheus.NewGauge(prometheus.GaugeOpts{Name: PromLastLost,
			Help: "Requests the last finished rollout lost."}),
		lostTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: PromLostTotal,
			Help: "Requests lost inside rollout windows."}),
	}
	for _, c := range []prometheus.Collector{p.rollouts, p.requests, p.duration, p.versionSeen, p.lastLost, p.lostTotal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{OutcomeClean, OutcomeLost, OutcomeFailed, OutcomeInterrupted} {
		p.rollouts.WithLabelValues(r)
	}
	p.requests.WithLabelValues(string(timeline.ClassOK))
	for _, c := range timeline.FailureClasses {
		p.requests.WithLabelValues(string(c))
	}
	return p, nil
}

func (p *Prometheus) Request(c timeline.Class) { p.requests.WithLabelValues(string(c)).Inc() }

func (p *Prometheus) Rollout(r *Result) {
	p.rollouts.WithLabelValues(r.Result).Inc()
	if !r.Complete.IsZero() {
		p.duration.Observe(r.Seconds)
	}
	if r.NewVersionSeenAfter != nil {
		p.versionSeen.Observe(*r.NewVersionSeenAfter)
	}
	p.lastLost.Set(float64(r.Lost))
	p.lostTotal.Add(float64(r.Lost))
}

// StatsD metric names, with StatsDPrefix in front (documented in
// docs/soak.md). Seed 003 sent qos.k8s.deploy.*; these say the same with
// tags instead of one name per error.
const (
	StatsDPrefix          = "rollsafe.soak."
	StatsDRollout         = "rollout"               // count, tag result:<outcome>
	StatsDRequest         = "request"               // count, tag class:<class>
	StatsDRolloutDuration = "rollout.duration"      // timing (ms), patch → complete
	StatsDVersionSeen     = "rollout.version_seen"  // timing (ms), patch → new version answered
	StatsDRolloutLost     = "rollout.lost_requests" // gauge, the last rollout's lost requests
)

// StatsD sends soak's measurements through a datadog-go client.
type StatsD struct {
	client statsd.ClientInterface
	tags   []string
	// OnError sees send errors (nil: ignored; a metrics outage must not stop
	// a soak).
	OnError func(error)
}

// NewStatsD sends through client, adding tags (e.g. "deployment:web") to
// every metric.
func NewStatsD(client statsd.ClientInterface, tags ...string) *StatsD {
	return &StatsD{client: client, tags: tags}
}

func (s *StatsD) with(tag string) []string {
	return append(append(make([]string, 0, len(s.tags)+1), s.tags...), tag)
}

func (s *StatsD) check(err error) {
	if err != nil && s.OnError != nil {
		s.OnError(err)
	}
}

func (s *StatsD) Request(c timeline.Class) {
	s.check(s.client.Incr(StatsDPrefix+StatsDRequest, s.with("class:"+string(c)), 1))
}

func (s *StatsD) Rollout(r *Result) {
	s.check(s.client.Incr(StatsDPrefix+StatsDRollout, s.with("result:"+r.Result), 1))
	if !r.Complete.IsZero() {
		s.check(s.client.Timing(StatsDPrefix+StatsDRolloutDuration, r.Complete.Sub(r.Started), s.tags, 1))
	}
	if r.NewVersionSeenAfter != nil {
		s.check(s.client.Timing(StatsDPrefix+StatsDVersionSeen, time.Duration(*r.NewVersionSeenAfter*float64(time.Second)), s.tags, 1))
	}
	s.check(s.client.Gauge(StatsDPrefix+StatsDRolloutLost, float64(r.Lost), s.tags, 1))
}
