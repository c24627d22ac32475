package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/alb"
	"github.com/rollsafe/rollsafe/albcontroller"
	"github.com/rollsafe/rollsafe/kubelet"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// Defaults for Options.
const (
	DefaultTimeScale = 0.1
	DefaultRollouts  = 3
	DefaultRate      = 200
)

// Options say how to run scenarios; settings of the rollout itself are in
// Scenario.
type Options struct {
	// TimeScale shrinks every spec duration (0.1: a 30 s grace period lasts 3 s).
	TimeScale float64
	Rollouts  int
	Rate      float64 // probe requests per second through the ALB stand-in
	// App is the command every pod runs (the demo API by default; the
	// caller resolves it). Env PORT, POD_IP, POD_NAME tell it where to listen.
	App []string
	// Sink gets every record: requests, pod and target changes, rollout marks.
	Sink func(*timeline.Record)
	// AccessLog gets the ALB stand-in's access log lines.
	AccessLog io.Writer
	// Progress gets one line per phase (nil: quiet).
	Progress func(format string, a ...any)
	// PodOutput gets the pods' stdout and stderr (nil discards them).
	PodOutput io.Writer
	// Listen is the ALB stand-in's address (default 127.0.0.1:0, any free port).
	Listen string
	// Kube, when set, runs the pods on a real Kubernetes control plane
	// through the node agent instead of the embedded cluster stand-in.
	Kube *KubeOptions
}

func (o Options) withDefaults() Options {
	if o.TimeScale <= 0 {
		o.TimeScale = DefaultTimeScale
	}
	if o.Rollouts <= 0 {
		o.Rollouts = DefaultRollouts
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Sink == nil {
		o.Sink = func(*timeline.Record) {}
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	return o
}

// Result is what one scenario did.
type Result struct {
	Scenario  Scenario                  `json:"-"`
	Name      string                    `json:"name"`
	Settings  string                    `json:"settings"`
	Rollouts  int                       `json:"rollouts"`
	Requests  uint64                    `json:"requests"`
	OK        uint64                    `json:"ok"`
	Failures  map[timeline.Class]uint64 `json:"failures"`
	Causes    map[timeline.Cause]uint64 `json:"causes"`
	LatencyMS probe.Latency             `json:"latency_ms"`
	// FailOpen counts requests the ALB routed while no target was healthy.
	FailOpen uint64 `json:"fail_open"`
	// Killed counts pods that got SIGKILL at the end of their grace period.
	Killed  int     `json:"killed"`
	Seconds float64 `json:"seconds"`
}

// Failed is the number of failed requests.
func (r *Result) Failed() uint64 { return r.Requests - r.OK }

// Run plays one scenario: two replicas (or the scenario's count) behind the
// ALB stand-in, under constant load, rolled out o.Rollouts times.
func Run(ctx context.Context, s Scenario, o Options) (*Result, error) {
	o = o.withDefaults()
	if len(o.App) == 0 {
		return nil, errors.New("lab: no app command")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{s: s, o: o, scale: kubelet.TimeScale(o.TimeScale), began: time.Now(),
		failInfo: map[string]alb.RequestInfo{}, procs: newProcesses()}
	return r.play(ctx)
}

// Served says where a served scenario can be reached.
type Served struct {
	URL        string `json:"url"`        // the ALB stand-in
	Namespace  string `json:"namespace"`  // of the Deployment
	Deployment string `json:"deployment"` // its name
}

// Serve brings a scenario up — first revision available, targets healthy —
// calls ready with where it is, and keeps it up, with no load and no
// rollouts of its own, until ctx ends. On a control plane (o.Kube) this is
// the stand-in for an EKS cluster behind an ALB that soak, probe and
// check --live run against unchanged.
func Serve(ctx context.Context, s Scenario, o Options, ready func(Served)) error {
	o = o.withDefaults()
	if len(o.App) == 0 {
		return errors.New("lab: no app command")
	}
	r := &run{s: s, o: o, scale: kubelet.TimeScale(o.TimeScale), began: time.Now(),
		failInfo: map[string]alb.RequestInfo{}, procs: newProcesses()}
	defer r.stop()
	if err := r.start(ctx); err != nil {
		return err
	}
	ready(Served{URL: r.lb.URL(), Namespace: r.plat.namespace(), Deployment: deploymentName})
	<-ctx.Done()
	return nil
}

// run is the state of one scenario while it plays.
type run struct {
	s     Scenario
	o     Options
	scale kubelet.TimeScale
	began time.Time

	lb          *alb.LB
	plat        platform
	procs       *processes
	tearingDown atomic.Bool

	mu       sync.Mutex
	summary  *probe.Summary
	failed   []*timeline.Record         // failed requests, attributed at the end
	failInfo map[string]alb.RequestInfo // what the ALB saw of failed requests, by trace id
	failOpen uint64
	killed   int
}

func (r *run) play(ctx context.Context) (*Result, error) {
	if err := r.start(ctx); err != nil {
		r.stop()
		return nil, err
	}
	err := r.rollUnderLoad(ctx)
	r.stop()
	if err != nil {
		return nil, err
	}
	return r.result(), nil
}

// start brings up the ALB, the controller and the cluster, and waits for
// the first revision to be ready and its targets healthy.
func (r *run) start(ctx context.Context) error {
	lb, err := alb.New(r.lbConfig())
	if err != nil {
		return fmt.Errorf("ALB stand-in: %w", err)
	}
	r.lb = lb
	r.o.Progress("%s: starting %d replicas behind the ALB stand-in at %s", r.s.Name, r.s.Replicas, lb.URL())
	if r.o.Kube != nil {
		r.plat, err = startKube(ctx, r)
	} else {
		r.plat, err = startEmbedded(ctx, r)
	}
	if err != nil {
		return err
	}
	r.waitHealthy(ctx)
	return ctx.Err()
}

// controllerOptions are the controller stand-in's settings for the scenario.
func (r *run) controllerOptions() albcontroller.Options {
	return albcontroller.Options{
		LB: r.lb, Port: AppPort, Lag: r.scale.Of(r.s.ControllerLag), Requeue: r.scale.Of(r.s.GateRequeue),
	}
}

func (r *run) lbConfig() alb.Config {
	sc := r.scale.Of
	cfg := alb.DefaultConfig()
	cfg.Name = "k8s-lab-" + r.s.Name
	if r.o.Listen != "" {
		cfg.Listen = r.o.Listen
	}
	cfg.ClientIdleTimeout = sc(r.s.LBIdleTimeout)
	cfg.TargetTimeout = sc(r.s.LBIdleTimeout)
	cfg.BackendIdleTimeout = sc(r.s.LBIdleTimeout)
	cfg.ConnectTimeout = sc(cfg.ConnectTimeout)
	cfg.TargetPort = AppPort
	hc := r.s.HealthCheck
	hc.Interval, hc.Timeout = sc(hc.Interval), sc(hc.Timeout)
	cfg.HealthCheck = hc
	cfg.DeregistrationDelay = sc(r.s.DeregistrationDelay)
	cfg.Propagation = sc(r.s.Propagation)
	cfg.AccessLog = r.o.AccessLog
	cfg.Sink = r.emit
	cfg.OnRequest = r.onRequest
	return cfg
}

// waitHealthy waits until every registered target is healthy, bounded by
// the time health checks need (a scenario whose targets never turn healthy
// goes on after that).
func (r *run) waitHealthy(ctx context.Context) {
	hc := r.lb.Config().HealthCheck
	deadline := time.Now().Add(r.scale.Of(r.s.ControllerLag) + hc.Interval*time.Duration(hc.HealthyThreshold+2) + r.scale.Of(r.s.GateRequeue))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		th := r.lb.TargetHealth()
		healthy := 0
		for _, t := range th {
			if t.State == alb.StateHealthy {
				healthy++
			}
		}
		if len(th) > 0 && healthy == len(th) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rollUnderLoad starts the probe, rolls out o.Rollouts times, lets the last
// terminations finish, then stops the probe.
func (r *run) rollUnderLoad(ctx context.Context) error {
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probes := r.startProbes(probeCtx)

	var err error
	for i := 1; i <= r.o.Rollouts && err == nil; i++ {
		r.settle(ctx, r.scale.Of(r.s.Propagation)+200*time.Millisecond)
		r.mark(timeline.KindRollout, fmt.Sprintf("v%d", i+1), "started")
		r.o.Progress("%s: rollout %d/%d (v%d → v%d)", r.s.Name, i, r.o.Rollouts, i, i+1)
		err = r.plat.rollout(ctx, podTemplate(r.s, r.scale, i+1))
		r.mark(timeline.KindRollout, fmt.Sprintf("v%d", i+1), "complete")
		r.waitTerminations(ctx)
	}
	r.settle(ctx, r.scale.Of(r.s.Propagation)+200*time.Millisecond)
	stopProbe()
	probeErr := probes.wait()
	if err == nil {
		err = probeErr
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// waitTerminations waits until no pod is terminating any more: every old
// pod ran its preStop, got SIGTERM, and exited or was killed.
func (r *run) waitTerminations(ctx context.Context) {
	for ctx.Err() == nil && r.plat.terminating() {
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *run) settle(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// stop tears everything down; pods are killed, nothing outlives the lab.
func (r *run) stop() {
	r.tearingDown.Store(true) // the kills below are the lab's, not the grace period's
	if r.plat != nil {
		r.plat.close()
	}
	if r.lb != nil {
		r.lb.Close()
	}
	r.attributeFailures()
}

func (r *run) mark(kind timeline.Kind, object, state string) {
	r.emit(&timeline.Record{Kind: kind, Time: time.Now(), Source: "lab", Object: object, State: state})
}

// emit sends a record to the caller's sink, labelled with the scenario.
func (r *run) emit(rec *timeline.Record) {
	rec.Scenario = r.s.Name
	r.o.Sink(rec)
}

func (r *run) onPodRecord(rec *timeline.Record) error {
	r.procs.observe(rec)
	if rec.Kind == timeline.KindPod && rec.State == string(kubelet.StateKilled) && !r.tearingDown.Load() {
		r.mu.Lock()
		r.killed++
		r.mu.Unlock()
	}
	r.emit(rec)
	return nil
}

// platform is where the pods run: the embedded cluster stand-in, or a real
// Kubernetes control plane with the node agent.
type platform interface {
	// rollout replaces the pod template and waits until the rollout is
	// complete as `kubectl rollout status` judges it.
	rollout(ctx context.Context, t corev1.PodTemplateSpec) error
	// terminating reports whether any pod is still terminating.
	terminating() bool
	// close kills every pod and stops the controller stand-in.
	close()
	// namespace is where the Deployment lives.
	namespace() string
}

// sinkFunc adapts a function to kubelet.Sink.
type sinkFunc func(*timeline.Record) error

func (f sinkFunc) Write(r *timeline.Record) error { return f(r) }
