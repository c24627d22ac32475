package soak

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig says where soak's metrics go besides its own output.
type MetricsConfig struct {
	// Listen serves Prometheus /metrics on this address ("": none). It is
	// bound at once, so a taken port fails before the first rollout.
	Listen string
	// StatsD sends to this agent ("": none), every metric tagged with Tags.
	StatsD string
	Tags   []string
	// Warn sees what fails once soak runs: the /metrics server, and the
	// first StatsD send error (nil: ignored; a metrics outage must not
	// stop a soak).
	Warn func(error)
}

// StartMetrics starts what c names and returns it as one Metrics (nil when
// c names nothing) and the stop that shuts it down, flushing StatsD. A
// malformed listen address or an unusable StatsD address is an
// *InputError; a well-formed address that cannot be bound (taken, not
// ours) is a server that would not start, like the lab's --listen.
func StartMetrics(c MetricsConfig) (Metrics, func(), error) {
	if c.Warn == nil {
		c.Warn = func(error) {}
	}
	var ms MultiMetrics
	var stops []func()
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	if c.Listen != "" {
		m, s, err := servePrometheus(c.Listen, c.Warn)
		if err != nil {
			return nil, nil, err
		}
		ms, stops = append(ms, m), append(stops, s)
	}
	if c.StatsD != "" {
		sc, err := statsd.New(c.StatsD, statsd.WithoutTelemetry())
		if err != nil {
			stop()
			return nil, nil, &InputError{fmt.Sprintf("--statsd %q: %v", c.StatsD, err)}
		}
		sm := NewStatsD(sc, c.Tags...)
		var once sync.Once
		sm.OnError = func(err error) { once.Do(func() { c.Warn(fmt.Errorf("--statsd: %w", err)) }) }
		ms, stops = append(ms, sm), append(stops, func() { sc.Close() })
	}
	if len(ms) == 0 {
		return nil, stop, nil
	}
	return ms, stop, nil
}

// servePrometheus listens on addr and serves /metrics until stop.
func servePrometheus(addr string, warn func(error)) (*Prometheus, func(), error) {
	reg := prometheus.NewRegistry()
	m, err := NewPrometheus(reg)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	var bad *net.AddrError
	if errors.As(err, &bad) {
		return nil, nil, &InputError{fmt.Sprintf("--metrics-listen: %v", err)}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			warn(fmt.Errorf("--metrics-listen: %w", err))
		}
	}()
	return m, func() { srv.Close() }, nil
}

// Summary is the run's last JSON line: the totals and why the gate failed
// ("" when it passed).
type Summary struct {
	Total *Total `json:"total"`
	Gate  string `json:"gate"`
}
