// Package lab replays EKS + ALB rollouts on one machine: the ALB stand-in
// (package lab/alb), the AWS Load Balancer Controller stand-in (package
// lab/albcontroller), and a cluster stand-in running real processes
// (packages lab/cluster and lab/kubelet, or a real control plane with
// lab/nodeagent), under constant traffic from the prober (package probe). Every
// request is recorded, and every failure is attributed to its cause.
//
// A Scenario holds settings in "spec time": the numbers a user would write
// in manifests and annotations. Options.TimeScale shrinks all of them
// together when the scenario runs, so the seeds' 50/40/35 s settings replay
// in seconds without changing their ratios.
package lab

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// The lab's own parameters, spec time (unscaled). AWS's, Kubernetes' and
// the controller's defaults, and the lab's P and controller lag, come from
// package defaults with their sources.
const (
	// IPReleaseDelay: how long after a pod is deleted (the kubelet's Deleted
	// record) its IP leaves the network, so that connects to it go
	// unanswered and the ALB answers 504 after its connect timeout. No AWS
	// or Kubernetes document gives a figure for the delay between a pod's
	// deletion and the VPC dropping its IP; 0, the IP leaving at the pod's
	// deletion, is the simplest model, not a measurement. The same for
	// every scenario.
	IPReleaseDelay = 0 * time.Second
	// DefaultTargetHealthPoll: how often the lab polls DescribeTargetHealth
	// (and DescribeTargetGroupAttributes) through its ELBv2 API for the
	// evidence, as a user watching a rollout on AWS would. rollsafe probe's
	// --poll-interval help says to keep it ≥ 1 s on AWS because
	// DescribeTargetHealth is rate limited; AWS documents that ELB API calls
	// are throttled per account (and Region) but publishes no per-call rate
	// to size it by, so 1 s is that floor — what a user investigating a
	// rollout would pick — not a sourced AWS figure. Each target change is
	// then known to a 1 s window (Attrs prev_poll).
	DefaultTargetHealthPoll = 1 * time.Second
	// GateConditionType is the readiness gate the controller's webhook
	// injects: defaults.GatePrefix + <TargetGroupBinding name>.
	GateConditionType = defaults.GatePrefix + "k8s-lab-jiameng-tgb"
	// AppPort is the seeds' service port; every pod listens on its own IP.
	AppPort = 1325
)

// App is how the demo API behaves; ignored for a user's own --app except
// that the env values are passed to it.
type App struct {
	Shutdown        string        // graceful | immediate
	DrainDelay      time.Duration // graceful's DRAIN_DELAY
	ShutdownTimeout time.Duration // graceful's SHUTDOWN_TIMEOUT
	IdleTimeout     time.Duration // the app's keep-alive timeout
}

// Scenario is one rollout setup, in spec time.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`

	Replicas        int32              `json:"replicas"`
	MaxSurge        intstr.IntOrString `json:"maxSurge"`
	MaxUnavailable  intstr.IntOrString `json:"maxUnavailable"`
	MinReadySeconds int32              `json:"minReadySeconds"`

	ReadinessGate bool          `json:"readinessGate"`
	PreStop       time.Duration `json:"preStop"` // lifecycle.preStop.sleep; 0 = none
	Grace         time.Duration `json:"grace"`   // terminationGracePeriodSeconds

	DeregistrationDelay time.Duration   `json:"deregistrationDelay"`
	LBIdleTimeout       time.Duration   `json:"lbIdleTimeout"`
	HealthCheck         alb.HealthCheck `json:"healthCheck"`
	// HealthCheckProtocol is an NLB health check's protocol (nlb.ProtocolTCP
	// or ProtocolHTTP); "" is the controller's default, TCP. The ALB and
	// CLB stand-ins check over HTTP.
	HealthCheckProtocol string `json:"healthCheckProtocol,omitempty"`

	App App `json:"app"`

	Propagation   time.Duration `json:"propagation"`
	ControllerLag time.Duration `json:"controllerLag"`
	GateRequeue   time.Duration `json:"gateRequeue"`

	// SlowRequest, when set, adds a side stream of GET /slow requests this
	// long, so requests are in flight when pods are killed.
	SlowRequest time.Duration `json:"slowRequest,omitempty"`
	// BurstEvery, when set, adds a burst of concurrent requests this often on
	// top of the constant load: real traffic is bursty, and a burst is what
	// reaches the backend connections that sat idle in the ALB's pool.
	BurstEvery time.Duration `json:"burstEvery,omitempty"`

	// Topology names the path from the load balancer to the pods
	// (Topologies; "" is DefaultTopology). Set it with On.
	Topology string `json:"topology,omitempty"`
	// Nodes is how many lab nodes run a kube-proxy (instance topologies).
	Nodes int `json:"nodes,omitempty"`
	// ProxyLag is how long each node's kube-proxy takes to apply an
	// endpoint change (instance topologies); node i of n applies it after
	// ProxyLag·i/n, so the last one after exactly ProxyLag.
	ProxyLag time.Duration `json:"proxyLag,omitempty"`
	// Policy is the Service's externalTrafficPolicy (instance topologies).
	Policy kubeproxy.Policy `json:"externalTrafficPolicy,omitempty"`
	// NodeLeave, when set, makes one node leave the load balancer this
	// long after each rollout starts, while a replacement joins (instance
	// topologies, Cluster policy; scalein.go).
	NodeLeave time.Duration `json:"nodeLeave,omitempty"`
	// Nginx is the in-cluster hop of the nginx-ingress topology (nil
	// elsewhere; On sets DefaultNginxHop when unset).
	Nginx *NginxHop `json:"nginx,omitempty"`

	// Source says where the settings came from: "built-in" or a manifest path.
	Source string `json:"source"`
	// Template is the user's pod template when replaying manifests (nil:
	// the built-in demo API template).
	Template *corev1.PodTemplateSpec `json:"-"`
}

// base is what every built-in scenario starts from: the seeds' service (two
// pods, maxUnavailable 0, maxSurge 1) behind an ALB made by the controller
// with its annotation defaults.
func base(name, desc string) Scenario {
	return Scenario{
		Name: name, Description: desc,
		Replicas: 2, MaxSurge: intstr.FromInt32(1), MaxUnavailable: intstr.FromInt32(0),
		Grace:               defaults.TerminationGracePeriod,
		DeregistrationDelay: defaults.DeregistrationDelay,
		LBIdleTimeout:       defaults.IdleTimeout,
		HealthCheck:         controllerHealthCheck(),
		App:                 App{Shutdown: "immediate", IdleTimeout: graceful.DefaultIdleTimeout},
		Propagation:         defaults.LabPropagation,
		ControllerLag:       defaults.LabControllerLag,
		GateRequeue:         defaults.GateRequeue,
		Source:              "built-in",
	}
}

// controllerHealthCheck: the AWS Load Balancer Controller's Ingress
// annotation defaults with the demo API's readiness path, as an Ingress
// annotation would set it.
func controllerHealthCheck() alb.HealthCheck {
	hc := alb.ControllerHealthCheck()
	hc.Path = "/readyz"
	return hc
}

// Builtins returns the built-in scenarios. The first three are what
// `rollsafe lab` runs by default.
func Builtins() []Scenario {
	naive := base("naive", "no readiness gate, no preStop, app exits at once on SIGTERM")

	gateOnly := base("gate-only", "readiness gate on, app exits at once on SIGTERM")
	gateOnly.ReadinessGate = true

	// The seeds' fix as they wrote it, not check's minimum: at this lab's P
	// 10 s and lag 1 s, `rollsafe check --recommend` accepts it for requests
	// up to 25 s (this scenario's take milliseconds); docs/guide.md, "One
	// source of the numbers", compares it with the deploy kit's 29/40/29.
	rec := base("recommended", "gate + preStop sleep 40s + grace 50s + deregistration delay 35s + graceful app")
	rec.ReadinessGate = true
	rec.PreStop = 40 * time.Second
	rec.Grace = 50 * time.Second
	rec.DeregistrationDelay = 35 * time.Second
	rec.App = App{Shutdown: "graceful", DrainDelay: 0, ShutdownTimeout: 5 * time.Second, IdleTimeout: graceful.DefaultIdleTimeout}

	idle := rec
	idle.Name = "short-app-idle-timeout"
	idle.Description = "recommended, but the app's keep-alive timeout is 5s (Node.js' default), below the ALB's 60s; bursty traffic"
	idle.App.IdleTimeout = 5 * time.Second
	idle.BurstEvery = 10 * time.Second

	kill := rec
	kill.Name = "prestop-exceeds-grace"
	kill.Description = "gate + preStop sleep 61s with the default 30s grace period (seed 003), in-flight 45s requests"
	kill.PreStop = 61 * time.Second
	kill.Grace = defaults.TerminationGracePeriod
	kill.DeregistrationDelay = defaults.DeregistrationDelay
	kill.SlowRequest = 45 * time.Second

	failOpen := base("no-healthy-target", "no gate, health check path answers 404: targets never turn healthy, the ALB fails open")
	failOpen.HealthCheck.Path = "/no-such-health-path"
	failOpen.App = rec.App
	failOpen.PreStop = rec.PreStop
	failOpen.Grace = rec.Grace
	failOpen.DeregistrationDelay = rec.DeregistrationDelay

	// On instance targets the load balancer's keep-alive connections stay
	// pinned through kube-proxy to the old pod, so the app must shed them
	// itself: graceful answers "Connection: close" while it drains, and a
	// connection that carries no request in that time is closed by the
	// load balancer once idle for its idle timeout. A drain longer than
	// that timeout (and than kube-proxy's lag) leaves nothing to reset.
	drain := base("drain-past-idle-timeout", "graceful app drains with Connection: close for 65s, past the load balancer's 60s idle timeout, grace 80s, no preStop (the fix on instance targets)")
	drain.Grace = 80 * time.Second
	drain.DeregistrationDelay = rec.DeregistrationDelay
	drain.App = App{Shutdown: "graceful", DrainDelay: 65 * time.Second, ShutdownTimeout: 5 * time.Second, IdleTimeout: graceful.DefaultIdleTimeout}

	// An NLB keeps sending new connections to a deregistered target for
	// about 2 minutes (nlb.Config.DeregistrationPropagation), and its
	// connections flow on after it: the drain must outlast both that and
	// the client's own keep-alive (probe's 30 s).
	nlbDrain := base("drain-past-nlb-propagation", "gate + graceful app drains with Connection: close for 130s, past the ~120s an NLB keeps sending new connections to a deregistered target, grace 150s (the fix on NLB ip targets)")
	nlbDrain.ReadinessGate = true
	nlbDrain.Grace = 150 * time.Second
	nlbDrain.App = App{Shutdown: "graceful", DrainDelay: 130 * time.Second, ShutdownTimeout: 5 * time.Second, IdleTimeout: graceful.DefaultIdleTimeout}

	all := []Scenario{naive, gateOnly, rec, idle, kill, failOpen, drain, nlbDrain}
	all = append(all, clbScaleIn(drain)...)
	all = append(all, ingressScenarios()...)
	return append(all, clbLocal(drain)...)
}

// DefaultScenarios are the three the seeds tell: errors, fewer errors, none.
var DefaultScenarios = []string{"naive", "gate-only", "recommended"}

// Lookup finds built-in scenarios by name.
func Lookup(names ...string) ([]Scenario, error) {
	all := map[string]Scenario{}
	for _, s := range Builtins() {
		all[s.Name] = s
	}
	var out []Scenario
	for _, n := range names {
		s, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (have: %s)", n, strings.Join(ScenarioNames(), ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// ScenarioNames lists the built-in scenario names, sorted.
func ScenarioNames() []string {
	var names []string
	for _, s := range Builtins() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// KeySettings is the one-line summary the results table prints.
func (s Scenario) KeySettings() string {
	if s.Topology != "" && s.Topology != DefaultTopology {
		return s.pathSettings()
	}
	gate := "off"
	if s.ReadinessGate {
		gate = "on"
	}
	pre := "none"
	if s.PreStop > 0 {
		pre = secs(s.PreStop)
	}
	return fmt.Sprintf("gate %s, preStop %s, grace %s, dereg %s, %s",
		gate, pre, secs(s.Grace), secs(s.DeregistrationDelay), s.App.settings())
}

// settings is the app's column: how it shuts down, its drain when it has
// one, and its keep-alive timeout.
func (a App) settings() string {
	if a.Shutdown == "graceful" && a.DrainDelay > 0 {
		return fmt.Sprintf("app graceful (drain %s, idle %s)", secs(a.DrainDelay), secs(a.IdleTimeout))
	}
	return fmt.Sprintf("app %s (idle %s)", a.Shutdown, secs(a.IdleTimeout))
}

func secs(d time.Duration) string { return fmt.Sprintf("%gs", d.Seconds()) }

// pathSettings is KeySettings on a topology other than the default: no gate
// column on instance paths (they have none), the CLB's connection draining
// in place of the deregistration delay, and the nodes' kube-proxy.
func (s Scenario) pathSettings() string {
	t, _ := LookupTopology(s.Topology)
	if t.Ingress && s.Nginx != nil {
		return s.Topology + ": " + s.ingressSettings()
	}
	var parts []string
	if !t.Instance {
		parts = append(parts, "gate "+onOff(s.ReadinessGate))
	}
	pre := "none"
	if s.PreStop > 0 {
		pre = secs(s.PreStop)
	}
	parts = append(parts, "preStop "+pre, "grace "+secs(s.Grace))
	switch {
	case t.LB == LBCLB && s.DeregistrationDelay == 0:
		parts = append(parts, "draining off")
	case t.LB == LBCLB:
		parts = append(parts, "draining "+secs(s.DeregistrationDelay))
	default:
		parts = append(parts, "dereg "+secs(s.DeregistrationDelay))
	}
	parts = append(parts, s.App.settings())
	if s.NodeLeave > 0 {
		parts = append(parts, "a node leaves "+secs(s.NodeLeave)+" into each rollout")
	}
	if t.Instance {
		parts = append(parts, fmt.Sprintf("%d nodes %s, kube-proxy lag %s", s.Nodes, s.Policy, secs(s.ProxyLag)))
	}
	return s.Topology + ": " + strings.Join(parts, ", ")
}

// ingressSettings is the settings column behind ingress-nginx: the load
// balancer's gate and delay concern the ingress pods, which are never
// rolled, so the app's side and nginx's own settings are what matter.
func (s Scenario) ingressSettings() string {
	pre := "none"
	if s.PreStop > 0 {
		pre = secs(s.PreStop)
	}
	h := s.Nginx
	return fmt.Sprintf("preStop %s, grace %s, %s, nginx sync lag %s, upstream keep-alive %s, next upstream %q × %d",
		pre, secs(s.Grace), s.App.settings(), secs(h.SyncLag().Round(10*time.Millisecond)), secs(h.KeepaliveTimeout),
		h.ProxyNextUpstream, h.ProxyNextUpstreamTry)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Validate says what in s the lab cannot replay, in the words of the
// manifests that set it (a replayed scenario can carry anything they say),
// so that no stand-in refuses it later with its own field names.
func (s Scenario) Validate() error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if _, err := LookupTopology(s.Topology); err != nil {
		bad("%v", err)
	}
	if s.Replicas < 1 {
		bad("replicas %d: the lab needs at least 1", s.Replicas)
	}
	hc := s.HealthCheck
	if hc.Interval <= 0 || hc.Timeout <= 0 {
		bad("health check interval %v, timeout %v: both must be > 0", hc.Interval, hc.Timeout)
	}
	if hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
		bad("health check thresholds healthy %d, unhealthy %d: both must be ≥ 1", hc.HealthyThreshold, hc.UnhealthyThreshold)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"terminationGracePeriodSeconds", s.Grace}, {"preStop", s.PreStop},
		{"deregistration delay (connection draining timeout)", s.DeregistrationDelay}} {
		if d.v < 0 {
			bad("%s %v: must be ≥ 0", d.name, d.v)
		}
	}
	if s.LBIdleTimeout <= 0 {
		bad("load balancer idle timeout %v: must be > 0", s.LBIdleTimeout)
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; ")) // one line: it is printed as one
}
