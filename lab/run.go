package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/alb/elbv2api"
	"github.com/rollsafe/rollsafe/lab/albcontroller"
	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/lab/nlb"
	"github.com/rollsafe/rollsafe/observe/elbv2"
	"github.com/rollsafe/rollsafe/observe/kube"
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
	// Sink gets every record: requests, pod and target changes, rollout
	// marks. Every part of the lab calls it, many at once: it must be safe
	// for concurrent use. Its first error stops the run, and Run (or Serve)
	// returns it; nothing reaches it after that.
	Sink timeline.Sink
	// AccessLog gets the ALB stand-in's access log lines. Its first error
	// stops the run as the Sink's does.
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
	// TargetHealthPoll is how often Run polls DescribeTargetHealth through
	// the lab's ELBv2 API for the evidence, in spec time (scaled by
	// TimeScale like every duration); 0 means DefaultTargetHealthPoll.
	TargetHealthPoll time.Duration
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
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if o.TargetHealthPoll <= 0 {
		o.TargetHealthPoll = DefaultTargetHealthPoll
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
	// Nginx is what nginx's access log says (nginx-ingress topology only).
	Nginx *NginxCounts `json:"nginx,omitempty"`
	// Evidence is the attribution from what a user on AWS could see, and
	// how often it agrees with Causes (the ground truth).
	Evidence *Evidence `json:"evidence"`
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
	r := newRun(s, o, cancel)
	r.evidenceOn = true
	return r.play(ctx)
}

// newRun prepares a run; cancel ends the context it will run in, which a
// failing recording does.
func newRun(s Scenario, o Options, cancel context.CancelFunc) *run {
	return &run{s: s, o: o, scale: kubelet.TimeScale(o.TimeScale), began: time.Now(),
		rec: timeline.NewLatch(o.Sink), cancel: cancel,
		failInfo: map[string]alb.RequestInfo{}, procs: newProcesses()}
}

// Served says where a served scenario can be reached.
type Served struct {
	URL        string `json:"url"`        // the ALB stand-in
	Namespace  string `json:"namespace"`  // of the Deployment
	Deployment string `json:"deployment"` // its name
	// Selector selects the Deployment's pods ("app=NAME").
	Selector string `json:"selector"`
	// ELBv2Endpoint is the lab's ELBv2 API (loopback) over the ALB stand-in:
	// the SDK's BaseEndpoint, probe's --aws-endpoint. It checks no
	// credentials, but the SDK signs requests and needs some.
	ELBv2Endpoint string `json:"elbv2_endpoint"`
	// TargetGroupARN is the stand-in's target group, as the API names it.
	TargetGroupARN string `json:"target_group_arn"`
	// Region is the one in the ARN (the SDK needs a region to sign).
	Region string `json:"region"`
	// IdleTimeout is the stand-in's listener idle timeout and Poll the
	// target-health poll interval, both at the lab's time scale: a prober
	// of the served lab closes idle connections before IdleTimeout, and
	// polls every Poll, as on AWS at full scale.
	IdleTimeout time.Duration `json:"idle_timeout"`
	Poll        time.Duration `json:"poll_interval"`
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// No evidence is kept here: a served lab runs for as long as the user
	// likes, and whoever probes it records their own.
	r := newRun(s, o, cancel)
	if err := r.start(ctx); err != nil {
		r.stop()
		return r.failure(err)
	}
	ready(Served{URL: r.lb.URL(), Namespace: r.plat.namespace(), Deployment: deploymentName,
		Selector: "app=" + deploymentName, ELBv2Endpoint: r.api.URL(),
		TargetGroupARN: r.lb.TargetGroupARN(), Region: r.lbf.region,
		IdleTimeout: r.lbf.clientIdle, Poll: r.scale.Of(r.o.TargetHealthPoll)})
	<-ctx.Done()
	r.stop()
	return r.failure(nil)
}

// run is the state of one scenario while it plays.
type run struct {
	s     Scenario
	o     Options
	scale kubelet.TimeScale
	began time.Time
	// rec is in front of the caller's Sink, and also fails on the access
	// log's errors; cancel ends the run when it fails.
	rec    *timeline.Latch
	cancel context.CancelFunc

	lb          balancer
	alb         *alb.LB // lb on the ALB and CLB topologies
	nlb         *nlb.LB // lb on the NLB topologies
	lbf         lbFacts
	flows       flows // the NLB's connections, for the ground truth
	topo        Topology
	nodes       *labNodes        // instance topologies: the nodes' kube-proxies
	hop         *nginxHop        // nginx-ingress: the ingress pods' nginx
	api         *elbv2api.Server // the lab's ELBv2 API over lb, on loopback
	plat        platform
	procs       *processes
	tearingDown atomic.Bool

	// Evidence (Run only, not Serve): what a user on AWS could see, kept
	// apart from the ground truth for the attribution (see evidenceSet).
	evidenceOn bool
	// observeCtx ends the evidence observers (target health poller, kube
	// watch or the embedded pod view); observing waits for them.
	observeCtx  context.Context
	stopObserve context.CancelFunc
	observing   sync.WaitGroup
	evMu        sync.Mutex
	evidence    []*timeline.Record // copies of every probe, kube and elbv2 record, in emission order
	accessLog   *bytes.Buffer      // the ALB stand-in's access log (complete once lb is closed)

	mu       sync.Mutex
	summary  *probe.Summary
	failed   []*timeline.Record         // failed requests, attributed at the end
	failInfo map[string]alb.RequestInfo // what the ALB saw of failed requests, by trace id
	failOpen uint64
	killed   int
}

func (r *run) play(ctx context.Context) (*Result, error) {
	r.emit(r.scenarioMark())
	if err := r.start(ctx); err != nil {
		r.stop()
		return nil, r.failure(err)
	}
	err := r.rollUnderLoad(ctx)
	r.stop()
	if err = r.failure(err); err != nil {
		return nil, err
	}
	res := r.result()
	if res.Evidence, err = r.attributeEvidence(); err != nil {
		return nil, fmt.Errorf("attribution from evidence: %w", err)
	}
	return res, nil
}

// start brings up the ALB, the controller and the cluster, and waits for
// the first revision to be ready and its targets healthy.
func (r *run) start(ctx context.Context) error {
	r.observeCtx, r.stopObserve = context.WithCancel(ctx)
	topo, err := LookupTopology(r.s.Topology)
	if err != nil {
		return err
	}
	r.topo = topo
	if err := r.s.nodeLeaveSupported(topo); err != nil {
		return err
	}
	if topo.Instance {
		if r.nodes, err = startNodes(r); err != nil {
			return err
		}
	}
	if topo.Ingress {
		if r.hop, err = startHop(r); err != nil {
			return err
		}
	}
	if err := r.startBalancer(); err != nil {
		return err
	}
	lb := r.lb
	if r.nodes != nil {
		// The nodes are the targets, registered once: a rollout
		// deregisters nothing.
		if err := lb.Register(r.nodes.targets()...); err != nil {
			return err
		}
	}
	if r.hop != nil {
		// So are the ingress pods.
		if err := lb.Register(r.hop.targets...); err != nil {
			return err
		}
	}
	r.api = elbv2api.New(lb, elbv2api.Options{TimeScale: r.o.TimeScale})
	if err := r.api.Listen("127.0.0.1:0"); err != nil {
		r.api = nil
		return fmt.Errorf("ELBv2 API: %w", err)
	}
	if r.evidenceOn {
		if err := r.pollTargetHealth(r.observeCtx); err != nil {
			return err
		}
	}
	r.o.Progress("%s: starting %d replicas behind the %s stand-in at %s", r.s.Name, r.s.Replicas, strings.ToUpper(topo.LB), lb.URL())
	if r.o.Kube != nil {
		r.plat, err = startKube(ctx, r)
	} else {
		r.plat, err = startEmbedded(ctx, r)
	}
	if err != nil {
		return err
	}
	r.waitHealthy(ctx)
	if r.hop != nil {
		r.hop.waitEndpoints(ctx, int(r.s.Replicas))
	}
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
	if r.o.AccessLog != nil {
		cfg.AccessLog = failWriter{r.o.AccessLog, r.fail}
	}
	if r.evidenceOn {
		// The attribution always gets the access log, --access-log or not.
		// The buffer goes first: a failing user writer stops MultiWriter.
		r.accessLog = &bytes.Buffer{}
		cfg.AccessLog = r.accessLog
		if r.o.AccessLog != nil {
			cfg.AccessLog = io.MultiWriter(r.accessLog, failWriter{r.o.AccessLog, r.fail})
		}
	}
	if r.nodes != nil {
		cfg.DialTarget = r.nodes.dial
		if p := r.nodes.healthCheckPort(); p != 0 {
			cfg.HealthCheck.Port = p
		}
	}
	cfg.Sink = r.emit
	cfg.OnRequest = r.onRequest
	return cfg
}

// waitHealthy waits until every registered target is healthy, bounded by
// the time health checks need (a scenario whose targets never turn healthy
// goes on after that).
func (r *run) waitHealthy(ctx context.Context) {
	hc := r.lbf.hc
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
		r.settle(ctx, r.settleTime())
		r.mark(timeline.KindRollout, fmt.Sprintf("v%d", i+1), "started")
		r.o.Progress("%s: rollout %d/%d (v%d → v%d)", r.s.Name, i, r.o.Rollouts, i, i+1)
		leave := r.startNodeLeave(ctx)
		err = r.plat.rollout(ctx, podTemplate(r.s, r.scale, i+1))
		r.mark(timeline.KindRollout, fmt.Sprintf("v%d", i+1), "complete")
		r.waitTerminations(ctx)
		if lerr := leave.wait(); err == nil {
			err = lerr
		}
	}
	r.settle(ctx, r.settleTime())
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

// settleTime is how long the load balancer takes to learn a change of
// targets — P, or on instance topologies (whose targets never change) the
// nodes' kube-proxy lag — with a margin.
func (r *run) settleTime() time.Duration {
	learn := r.s.Propagation
	switch {
	case r.nodes != nil:
		learn = r.s.ProxyLag
	case r.hop != nil:
		learn = r.s.Nginx.SyncLag()
	}
	return r.scale.Of(learn) + 200*time.Millisecond
}

func (r *run) settle(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// stop tears everything down; pods are killed, nothing outlives the lab.
// The evidence observers stop first: the teardown is not the scenario's.
func (r *run) stop() {
	if r.stopObserve != nil {
		r.stopObserve()
		r.observing.Wait()
	}
	r.tearingDown.Store(true) // the kills below are the lab's, not the grace period's
	if r.plat != nil {
		r.plat.close()
	}
	if r.api != nil {
		r.api.Close()
	}
	if r.lb != nil {
		if err := r.lb.Close(); err != nil {
			// Its recording's errors have failed the run already (emit,
			// failWriter); fail keeps the first, and any other stops it too.
			r.fail(err)
		}
	}
	if r.nodes != nil {
		if err := r.nodes.close(); err != nil {
			r.fail(err)
		}
	}
	if r.hop != nil {
		if err := r.hop.close(); err != nil {
			r.fail(fmt.Errorf("nginx hop: %w", err))
		}
	}
	r.attributeFailures()
}

// fail stops the run with err, unless it failed already: what was recorded
// since is missing, and the run must not pass as if whole.
func (r *run) fail(err error) {
	r.rec.Fail(err)
	r.cancel()
}

// failure is the run's error: the recording's, which stopped it, before
// err (often only the cancellation that followed).
func (r *run) failure(err error) error {
	if rerr := r.rec.Err(); rerr != nil {
		return fmt.Errorf("recording: %w", rerr)
	}
	return err
}

// failWriter is the caller's access log; its first error fails the run.
type failWriter struct {
	w    io.Writer
	fail func(error)
}

func (f failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.fail(fmt.Errorf("access log: %w", err))
	}
	return n, err
}

// pollTargetHealth polls the target group's health through the lab's ELBv2
// API with the real aws-sdk-go-v2 client and observe/elbv2, as a user on AWS
// would (Source elbv2), every Options.TargetHealthPoll of spec time. The
// first poll happens here, so an API that does not answer fails the start.
func (r *run) pollTargetHealth(ctx context.Context) error {
	region := r.lbf.region
	if region == "" {
		region = "us-east-1"
	}
	// Static dummy credentials and the loopback endpoint: never the default
	// chain, never IMDS. The lab's API checks no signature.
	client := awselbv2.New(awselbv2.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDROLLSAFELAB", "lab-secret", ""),
		BaseEndpoint: aws.String(r.api.URL()),
	})
	p, err := elbv2.New(ctx, elbv2.Config{
		TargetGroupARN: r.lb.TargetGroupARN(), Client: client,
		Interval: max(r.scale.Of(r.o.TargetHealthPoll), time.Millisecond),
		OnError: func(err error) {
			r.o.Progress("%s: warning: target health poll: %v", r.s.Name, err)
		},
	})
	if err != nil {
		return err
	}
	first, err := p.Poll(ctx)
	if err != nil {
		return fmt.Errorf("polling the lab's ELBv2 API: %w", err)
	}
	for i := range first {
		r.emit(&first[i])
	}
	r.observing.Go(func() {
		// Only a sink error can end Run before ctx does, and emit has
		// failed the run with it already.
		p.Run(ctx, r.emit)
	})
	return nil
}

func (r *run) mark(kind timeline.Kind, object, state string) {
	r.emit(&timeline.Record{Kind: kind, Time: time.Now(), Source: "lab", Object: object, State: state})
}

// emit sends a record to the caller's sink, labelled with the scenario, and
// keeps a copy of evidence for the attribution. It is the Sink of every
// part of the lab; a failing sink fails the run (and emit returns its
// error, for a producer that stops on it).
func (r *run) emit(rec *timeline.Record) error {
	rec.Scenario = r.s.Name
	if r.evidenceOn && isEvidence(rec) {
		c := *rec
		c.Attrs = maps.Clone(rec.Attrs)
		r.evMu.Lock()
		r.evidence = append(r.evidence, &c)
		r.evMu.Unlock()
	}
	if err := r.rec.Write(rec); err != nil {
		r.cancel()
		return err
	}
	return nil
}

// isEvidence: what a user on AWS could record — requests as the prober saw
// them, the Kubernetes API's view, DescribeTargetHealth. Never the lab's
// ground truth (Source lab, KindTruth).
func isEvidence(rec *timeline.Record) bool {
	if rec.Kind == timeline.KindTruth {
		return false
	}
	switch rec.Source {
	case "probe", kube.Source, elbv2.Source:
		return true
	}
	return false
}

// evidenceSet is everything the attribution may use once the scenario has
// ended: copies of every probe, kube and elbv2 record, in emission order
// (not time order: failed requests are emitted last, by
// attributeFailures), and the ALB stand-in's access log, one ALB-format
// line per request. Call it after stop: the observers have stopped, the
// failed requests are emitted and lb.Close has flushed the log. A served
// lab (Serve) keeps no evidence: nil, nil.
func (r *run) evidenceSet() ([]*timeline.Record, []byte) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	var log []byte
	if r.accessLog != nil {
		log = r.accessLog.Bytes()
	}
	return r.evidence, log
}

func (r *run) onPodRecord(rec *timeline.Record) error {
	r.procs.observe(rec)
	if ip := rec.Attrs["ip"]; rec.Kind == timeline.KindPod && rec.Source == kubelet.Source && ip != "" && r.lb != nil {
		switch kubelet.State(rec.State) {
		case kubelet.StatePending, kubelet.StateRunning:
			// A pod holds the IP: it is on the network (again, if an
			// earlier pod had it).
			_ = r.lb.SetReachable(ip, true)
		case kubelet.StateDeleted:
			// The pod is gone: IPReleaseDelay later its IP leaves the
			// network and connects to it go unanswered (504 after the
			// ALB's connect timeout), unless a new pod holds it by then.
			name := rec.Object
			release := func() {
				r.procs.whileCurrent(ip, name, func() { r.setReachable(ip, false) })
			}
			if d := r.scale.Of(IPReleaseDelay); d > 0 {
				time.AfterFunc(d, release)
			} else {
				release()
			}
		}
	}
	if rec.Kind == timeline.KindPod && rec.State == string(kubelet.StateKilled) && !r.tearingDown.Load() {
		r.mu.Lock()
		r.killed++
		r.mu.Unlock()
	}
	return r.emit(rec)
}

// setReachable tells the load balancer, and the nodes' kube-proxies on
// instance topologies, whether a pod IP is on the network.
func (r *run) setReachable(ip string, on bool) {
	_ = r.lb.SetReachable(ip, on)
	if r.nodes != nil {
		_ = r.nodes.reach.Set(ip, on)
	}
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
