package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
	"github.com/rollsafe/rollsafe/lab/nginx"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
	"github.com/rollsafe/rollsafe/workload"
)

// NginxHop is the nginx-ingress topology's in-cluster hop, spec time.
// Every field's default and source is in docs/lab.md ("nginx ingress").
type NginxHop struct {
	// Instances is how many ingress-nginx controller pods run, each a real
	// nginx on 127.0.3.N: the load balancer's targets, never rolled.
	Instances int `json:"instances"`
	// SyncInterval and Poll are the controller's sync rate limit (one per
	// SyncInterval, burst 1) and the workers' backends poll; a change
	// reaches the workers within their sum (defaults.NginxSyncLag).
	SyncInterval time.Duration `json:"syncInterval"`
	Poll         time.Duration `json:"poll"`
	// The ingress-nginx settings, as its ConfigMap and annotations name them.
	ProxyNextUpstream    string        `json:"proxyNextUpstream"`
	ProxyNextUpstreamTry int           `json:"proxyNextUpstreamTries"`
	ConnectTimeout       time.Duration `json:"proxyConnectTimeout"`
	ReadTimeout          time.Duration `json:"proxyReadTimeout"`
	KeepaliveConnections int           `json:"upstreamKeepaliveConnections"`
	KeepaliveTimeout     time.Duration `json:"upstreamKeepaliveTimeout"`
	KeepaliveRequests    int           `json:"upstreamKeepaliveRequests"`
	// Request is how long each probe request takes in the app (/slow), so
	// that requests are in flight when a pod exits: GETs and POSTs alike.
	Request time.Duration `json:"request"`
}

// SyncLag is the longest the hop takes to route by an endpoint change.
func (h NginxHop) SyncLag() time.Duration { return h.SyncInterval + h.Poll }

// DefaultNginxHop is ingress-nginx's defaults (package defaults) with one
// controller pod, the chart's controller.replicaCount.
func DefaultNginxHop() NginxHop {
	return NginxHop{Instances: 1, SyncInterval: defaults.NginxSyncInterval, Poll: defaults.NginxBackendsSyncInterval,
		ProxyNextUpstream: defaults.NginxProxyNextUpstream, ProxyNextUpstreamTry: defaults.NginxProxyNextUpstreamTries,
		ConnectTimeout: defaults.NginxProxyConnectTimeout, ReadTimeout: defaults.NginxProxyReadTimeout,
		KeepaliveConnections: defaults.NginxUpstreamKeepaliveConnections, KeepaliveTimeout: defaults.NginxUpstreamKeepaliveTimeout,
		KeepaliveRequests: defaults.NginxUpstreamKeepaliveRequests, Request: 2 * time.Second}
}

// TopologyNginxIngress names the topology with the nginx hop.
const TopologyNginxIngress = "nginx-ingress"

// hopAddr is ingress pod i's address (1-based): 127.0.3.i, apart from the
// pods (127.b.x.y, b ≥ 1 is the cluster's; 127.0.S.x, S ≥ 100, the nodes').
func hopAddr(i int) string { return fmt.Sprintf("127.0.3.%d", i) }

// nginxHop is the running hop: one nginx and one syncer per ingress pod.
type nginxHop struct {
	insts   []*nginx.Instance
	syncers []*nginx.Syncer
	targets []alb.Target

	mu      sync.Mutex
	applied int              // endpoint sets applied (reloads)
	current []netip.AddrPort // the last set applied
	lines   map[string]nginx.Line
	counts  NginxCounts
}

// NginxCounts is what nginx's access log says of a run, by method: the
// requests that failed at nginx (5xx) and the ones it passed on to another
// endpoint after a failed try and that then succeeded, which the client
// never sees.
type NginxCounts struct {
	Failed  map[string]uint64 `json:"failed"`
	Retried map[string]uint64 `json:"retried"`
	Reloads int               `json:"reloads"`
}

// startHop starts every ingress pod's nginx with no endpoints.
func startHop(r *run) (*nginxHop, error) {
	h := &nginxHop{}
	cfg := r.s.Nginx
	sc := r.scale.Of
	for i := 1; i <= cfg.Instances; i++ {
		port, err := freePort(hopAddr(i))
		if err != nil {
			h.close()
			return nil, err
		}
		listen := netip.AddrPortFrom(netip.MustParseAddr(hopAddr(i)), uint16(port))
		in, err := nginx.New(nginx.Config{Listen: listen, ProxyNextUpstream: cfg.ProxyNextUpstream,
			NextUpstreamTries: cfg.ProxyNextUpstreamTry, ConnectTimeout: sc(cfg.ConnectTimeout), ReadTimeout: sc(cfg.ReadTimeout),
			KeepaliveConns: cfg.KeepaliveConnections, KeepaliveTimeout: sc(cfg.KeepaliveTimeout), KeepaliveRequests: cfg.KeepaliveRequests,
			ClientKeepalive: sc(defaults.NginxClientKeepaliveTimeout), WorkerShutdown: sc(defaults.NginxWorkerShutdownTimeout),
			RequestIDHeader: probe.TraceHeader})
		if err != nil {
			h.close()
			return nil, err
		}
		h.insts = append(h.insts, in)
		h.targets = append(h.targets, alb.Target{IP: hopAddr(i), Port: port})
		s := &nginx.Syncer{Interval: sc(cfg.SyncInterval), Poll: sc(cfg.Poll),
			Apply: func(eps []netip.AddrPort) {
				if err := in.Update(eps); err != nil {
					r.o.Progress("%s: warning: nginx reload: %v", r.s.Name, err)
				}
			}, OnApply: func(at time.Time, eps []netip.AddrPort) { h.onApply(r, i, at, eps) }}
		s.Start(nil)
		h.syncers = append(h.syncers, s)
	}
	return h, nil
}

// freePort finds a port free on host (nginx cannot report the one it
// would pick for port 0).
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("nginx hop: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// onApply records, as ground truth, which endpoints ingress pod i routes
// to from now on.
func (h *nginxHop) onApply(r *run, i int, at time.Time, eps []netip.AddrPort) {
	h.mu.Lock()
	h.applied++
	h.current = eps
	h.mu.Unlock()
	r.emit(&timeline.Record{Kind: timeline.KindEvent, Time: at, Source: "lab", Object: "ingress-nginx-" + strconv.Itoa(i),
		State: "reloaded", Attrs: map[string]string{"endpoints": fmt.Sprint(eps)}})
}

// update hands every ingress pod's syncer the Service's endpoints for
// pods (the embedded lab, which has no EndpointSlices).
func (h *nginxHop) update(pods func() []*corev1.Pod) {
	var eps []kubeproxy.Endpoint
	for _, p := range pods() {
		if ep, ok := kubeproxy.FromPod(p, AppPort); ok {
			eps = append(eps, ep)
		}
	}
	h.apply(eps)
}

// apply hands every ingress pod's syncer the Ready endpoints, as
// ingress-nginx reads EndpointSlices: an endpoint whose Ready condition is
// false (not ready, or terminating) is left out
// (internal/ingress/controller/endpointslices.go).
func (h *nginxHop) apply(all []kubeproxy.Endpoint) {
	var eps []netip.AddrPort
	for _, ep := range all {
		if ep.Ready {
			eps = append(eps, ep.Addr)
		}
	}
	for _, s := range h.syncers {
		s.Update(eps)
	}
}

// waitEndpoints waits until the hop routes to n endpoints (the first
// revision), so that the load starts on a hop that knows the pods.
func (h *nginxHop) waitEndpoints(ctx context.Context, n int) {
	for ctx.Err() == nil {
		h.mu.Lock()
		ok := len(h.current) >= n
		h.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close stops nginx (its workers finish their requests) and reads every
// access log: the ground truth of what nginx did with each request.
func (h *nginxHop) close() error {
	var first error
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = map[string]nginx.Line{}
	h.counts = NginxCounts{Failed: map[string]uint64{}, Retried: map[string]uint64{}, Reloads: h.applied}
	for _, s := range h.syncers {
		s.Close()
	}
	for _, in := range h.insts {
		if err := in.Close(); err != nil && first == nil {
			first = err
		}
		lines, err := nginx.ReadLog(in.AccessLog())
		in.Remove()
		if err != nil && first == nil {
			first = err
		}
		for _, l := range lines {
			h.lines[l.RequestID] = l
			switch {
			case l.Status >= 500:
				h.counts.Failed[l.Method]++
			case l.Retried():
				h.counts.Retried[l.Method]++
			}
		}
	}
	h.insts, h.syncers = nil, nil
	return first
}

// cause is the ground truth of a failed request through the hop, from
// nginx's access log line for it (joined by the trace id) and the process
// history of the pod of its last try: a pod whose process had exited (or
// was killed) by then is one nginx still routed to, not having learned of
// its removal yet, or one that exited under a request nginx would not pass
// on (a POST already sent).
func (r *run) hopCause(rec *timeline.Record) (timeline.Cause, map[string]string) {
	r.hop.mu.Lock()
	l, ok := r.hop.lines[rec.TraceID]
	r.hop.mu.Unlock()
	if !ok {
		return timeline.CauseUnknown, nil
	}
	attrs := map[string]string{"method": l.Method, "nginx_status": strconv.Itoa(l.Status), "tries": strconv.Itoa(len(l.Tries))}
	pod, status, ok := l.LastPod()
	if !ok {
		return timeline.CauseUnknown, attrs
	}
	attrs["upstream"], attrs["upstream_status"] = pod.String(), status
	f, known := r.procs.facts(pod.Addr().String())
	if !known {
		return timeline.CauseUnknown, attrs
	}
	end := rec.Time.Add(rec.Latency)
	killed, gone, _ := f.during(rec.Time, end)
	switch {
	case killed:
		return timeline.CauseKilledByGrace, attrs
	case gone:
		return timeline.CauseIngressStaleEndpoint, attrs
	case status == "502" && (f.sigterm.IsZero() || f.sigterm.After(end)):
		// Running and not told to stop, the app closes a connection only
		// at its keep-alive timeout: nginx sent the request on a cached
		// connection the app was closing.
		return timeline.CauseKeepAliveRace, attrs
	}
	return timeline.CauseUnknown, attrs
}

// hopProbes are the nginx-ingress topology's two streams, half the rate
// each: GET and POST of /slow, one new connection per request. New
// connections keep the lab's reloads of plain nginx (which close idle
// client connections; ingress-nginx does not reload for endpoint changes)
// from failing requests, and keep Go's client from retrying a GET on a
// reused connection: what differs between the streams is nginx's doing.
func (r *run) hopProbes(timeout time.Duration) []probe.Config {
	req := r.scale.Of(r.s.Nginx.Request)
	url := fmt.Sprintf("%s/slow?ms=%d", r.lb.URL(), req.Milliseconds())
	var out []probe.Config
	for _, m := range []string{"GET", "POST"} {
		c := probe.Config{URL: url, Rate: r.o.Rate / 2, Connections: 64, NewConn: true, Method: m, Timeout: timeout + req}
		if m == "POST" {
			c.Body = []byte(`{"order":1}`)
		}
		out = append(out, c)
	}
	return out
}

// ingressScenarios are the nginx-ingress topology's pair: GET and POST
// streams of 2 s requests through ingress-nginx's defaults.
func ingressScenarios() []Scenario {
	// minReadySeconds 10 spaces the rollout's steps beyond the sync lag,
	// so one old pod exits at a time and a retry has a live pod to go to.
	broken := base("ingress-no-prestop", "nginx-ingress: no preStop, app exits at once on SIGTERM, minReadySeconds 10; nginx routes to it until its sync lag ends, retries GETs on another pod, never a POST already sent")
	topo, _ := LookupTopology(TopologyNginxIngress)
	broken = broken.On(topo)
	broken.MinReadySeconds = 10
	// The fix as a check rule would size it: a preStop covering the
	// ingress's sync lag (defaults.NginxSyncLag, 4.33 s) plus
	// defaults.Margin, rounded up; the NLB's propagation does not apply
	// (its targets, the ingress pods, are not rolled). The app finishes
	// in-flight requests on SIGTERM and keeps idle connections longer than
	// nginx's upstream keep-alive (75 s > 60 s), so no request needs a retry.
	fixed := base("ingress-prestop", "nginx-ingress: as ingress-no-prestop with a preStop sleep 7s (ingress sync lag 4.33s + 2s), graceful app, app keep-alive 75s > nginx's 60s; no request lost, none retried")
	fixed = fixed.On(topo)
	fixed.MinReadySeconds = broken.MinReadySeconds
	fixed.PreStop = (defaults.NginxSyncLag + defaults.Margin + time.Second - 1).Truncate(time.Second)
	fixed.App = App{Shutdown: "graceful", ShutdownTimeout: 5 * time.Second, IdleTimeout: graceful.DefaultIdleTimeout}
	// nginx-prestop-too-short's broken side: a preStop, but shorter than
	// the sync lag, with an app that exits at once (replay ingress-prestop
	// with --app-shutdown immediate for the kept side).
	short := broken
	short.Name = "ingress-prestop-short"
	short.Description = "nginx-ingress: ingress-no-prestop with a preStop sleep 2s, shorter than the ingress sync lag 4.33s; requests nginx still sends after it are cut when the app exits"
	short.PreStop = 2 * time.Second
	return append([]Scenario{broken, fixed, short}, ingressKeepaliveScenarios(fixed)...)
}

// ingressKeepaliveScenarios are nginx-upstream-keepalive's pair, on
// ingress-prestop (no stale endpoint left to fail a request): the app's
// keep-alive 5 s (Node.js' default) below nginx's upstream keep-alive
// 60 s, and the fix, 75 s. Bursts, as for the ALB's short-app-idle-timeout,
// make nginx reach into its pool of idle connections.
func ingressKeepaliveScenarios(prestop Scenario) []Scenario {
	with := func(name, desc string, idle time.Duration) Scenario {
		s := prestop
		s.Name, s.Description = name, desc
		s.App.IdleTimeout, s.BurstEvery = idle, 10*time.Second
		return s
	}
	return []Scenario{
		with("ingress-short-app-idle-timeout", "nginx-ingress: ingress-prestop with the app's keep-alive 5s (Node.js' default) below nginx's upstream keep-alive 60s; bursty GET and POST traffic", 5*time.Second),
		with("ingress-long-app-idle-timeout", "nginx-ingress: ingress-short-app-idle-timeout with the app's keep-alive 75s, past nginx's upstream keep-alive 60s", graceful.DefaultIdleTimeout),
	}
}

// hopFromRoute lays an ingress-nginx route's settings (its annotations and
// the controller's ConfigMap, package workload) over h.
func hopFromRoute(h NginxHop, n *workload.Nginx) *NginxHop {
	h.ProxyNextUpstream, h.ProxyNextUpstreamTry = n.ProxyNextUpstream, n.ProxyNextUpstreamTries
	h.ConnectTimeout, h.ReadTimeout = n.ProxyConnectTimeout, n.ProxyReadTimeout
	h.KeepaliveConnections, h.KeepaliveTimeout, h.KeepaliveRequests = n.UpstreamKeepaliveConnections, n.UpstreamKeepaliveTimeout, n.UpstreamKeepaliveRequests
	return &h
}
