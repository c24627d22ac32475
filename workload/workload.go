// Package workload joins manifest objects into Workloads: each Deployment
// or StatefulSet with the Services, Ingresses, TargetGroupBindings, PDBs and
// Namespace that route traffic to it or guard it, and the numbers of its
// zero-downtime chain resolved with Kubernetes', AWS's and the controller's
// defaults (package defaults) applied. check judges Workloads; the lab
// replays a user's manifests from them.
package workload

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/manifest"
)

// Workload is one Deployment or StatefulSet joined with everything that
// routes traffic to it, and the numbers of its zero-downtime chain resolved
// with Kubernetes', AWS's and the controller's defaults applied.
type Workload struct {
	Object    *manifest.Object `json:"-"`
	Ref       string           `json:"ref"` // Kind/namespace/name
	Kind      string           `json:"kind"`
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`

	Template *corev1.PodTemplateSpec `json:"-"`
	// NamespaceObject is nil when the Namespace is not among the inputs.
	NamespaceObject     *manifest.Object   `json:"-"`
	Services            []*manifest.Object `json:"-"`
	Ingresses           []*manifest.Object `json:"-"`
	TargetGroupBindings []*manifest.Object `json:"-"`
	PDBs                []*manifest.Object `json:"-"`
	Routes              []Route            `json:"routes"`

	Replicas        int    `json:"replicas"`
	Strategy        string `json:"strategy"` // RollingUpdate, Recreate, OnDelete
	MaxSurge        int    `json:"maxSurge"` // resolved against Replicas
	MaxUnavailable  int    `json:"maxUnavailable"`
	MinReadySeconds int    `json:"minReadySeconds"`
	// TerminationGracePeriod is defaults.TerminationGracePeriod when unset.
	TerminationGracePeriod time.Duration `json:"terminationGracePeriod"`
	GraceDefaulted         bool          `json:"graceDefaulted"`
	// Containers are the ones serving the Services' target ports (all of
	// them when no port can be matched).
	Containers []Container `json:"containers"`

	// GateInjection: the namespace carries the label
	// defaults.GateInjectLabel=enabled. GateKnown is false
	// when the Namespace was not among the inputs.
	GateInjection bool `json:"gateInjection"`
	GateKnown     bool `json:"gateKnown"`
	// ManualGate: the pod template declares a target-health readiness gate itself.
	ManualGate bool `json:"manualGate"`

	// App facts from flags or rollsafe.dev/* annotations; 0 = unknown.
	AppIdleTimeout     time.Duration `json:"appIdleTimeout"`
	MaxRequestDuration time.Duration `json:"maxRequestDuration"`
	ShutdownTime       time.Duration `json:"shutdownTime"`
	// DrainDelay is how long after SIGTERM the app keeps serving while it
	// answers "Connection: close" (rollsafe/graceful's DRAIN_DELAY): what
	// sheds the connections pinned through kube-proxy. From the
	// rollsafe.dev/drain-delay annotation, else a serving container's
	// DRAIN_DELAY env; 0 = none known.
	DrainDelay time.Duration `json:"drainDelay,omitempty"`
	// MaxRequestAnnotated: MaxRequestDuration comes from the workload's
	// annotation, not from Options.
	MaxRequestAnnotated bool `json:"maxRequestAnnotated"`

	// AssumedPort is set when the input holds no Service at all (it lives
	// in another file or chart) and the workload declares container ports:
	// it is then judged as served, and every finding says so.
	AssumedPort string `json:"assumedPort,omitempty"`
	// InputServices counts the Services in the input, to say why a
	// workload none of them selects is not judged as served.
	InputServices int `json:"-"`
	// Err holds what made the workload's numbers unusable (an annotation
	// that is not a duration, a bad maxUnavailable), each naming file:line;
	// nil when it resolved cleanly. Its numbers then hold defaults where
	// the bad values were, so it must not be judged.
	Err error `json:"-"`
}

// Container is a serving container's probe and hook.
type Container struct {
	Name      string  `json:"name"`
	Index     int     `json:"index"`
	Readiness *Probe  `json:"readiness,omitempty"`
	PreStop   PreStop `json:"preStop"`
}

// Probe is a readiness probe with Kubernetes' defaults applied.
type Probe struct {
	Kind             string        `json:"kind"` // httpGet, tcpSocket, exec, grpc
	Path             string        `json:"path,omitempty"`
	Port             string        `json:"port,omitempty"`
	InitialDelay     time.Duration `json:"initialDelay"`
	Period           time.Duration `json:"period"`
	Timeout          time.Duration `json:"timeout"`
	SuccessThreshold int           `json:"successThreshold"`
	FailureThreshold int           `json:"failureThreshold"`
}

// Route is one load balancer path to the workload.
type Route struct {
	LB string `json:"lb"` // ALB, NLB, CLB, TargetGroup (a hand-made TargetGroupBinding) or LBNginx
	// Front is the object carrying the load balancer settings: the Ingress,
	// the LoadBalancer Service, or the TargetGroupBinding.
	Front   *manifest.Object `json:"-"`
	Service *manifest.Object `json:"-"`
	Via     string           `json:"via"`
	// Group is the ALB IngressGroup the Ingress belongs to.
	Group string `json:"group,omitempty"`
	// TargetType is ip or instance; empty when it cannot be known from
	// manifests (a TargetGroupBinding without targetType) and for LBNginx,
	// which routes to the pods' endpoints itself (no AWS target health).
	TargetType string `json:"targetType"`
	// DeregistrationDelay is deregistration_delay.timeout_seconds
	// (defaults.DeregistrationDelay when unset). For a CLB it is the
	// connection-draining timeout (0 when draining is off, the in-tree default).
	DeregistrationDelay time.Duration `json:"deregistrationDelay"`
	// IdleTimeout is the LB's idle_timeout.timeout_seconds
	// (defaults.IdleTimeout when unset); 0 for an NLB, which does not reuse
	// connections across clients.
	IdleTimeout time.Duration `json:"idleTimeout"`
	// L7 says the LB pools keep-alive connections to targets (ALB, HTTP CLB).
	L7          bool        `json:"l7"`
	HealthCheck HealthCheck `json:"healthCheck"`
	// Local: the Service's externalTrafficPolicy is Local, so each node
	// forwards only to its own pods (instance targets).
	Local bool `json:"local,omitempty"`

	// Where each setting is written, for findings.
	DelayAt, TargetTypeAt, HealthAt Where `json:"-"`
	// DelayKey is the annotation that sets the delay ("" when none does:
	// a hand-made TargetGroupBinding's target group, an in-tree NLB).
	DelayKey string `json:"-"`
	// DelaySet: DelayKey is written (a CLB's draining timeout; otherwise
	// the default, defaults.CLBConnectionDrainingTimeout, is assumed).
	DelaySet bool `json:"-"`
	// Controller: an NLB the AWS Load Balancer Controller makes (not the
	// in-tree provider's).
	Controller bool `json:"controller,omitempty"`
	// Nginx holds an ingress-nginx route's settings; non-nil iff LB is
	// LBNginx.
	Nginx *Nginx `json:"nginx,omitempty"`
}

// Where is the place a route's setting is written: Object nil means the
// route's Front, Line 0 the object's own line.
type Where struct {
	Object *manifest.Object
	Line   int
}

// Locate returns the object holding a setting and its line.
func (r *Route) Locate(at Where) (*manifest.Object, int) {
	o, line := at.Object, at.Line
	if o == nil {
		o = r.Front
	}
	if line == 0 {
		line = o.Source.Line
	}
	return o, line
}

// HealthCheck is the target group health check with defaults applied.
type HealthCheck struct {
	Protocol           string        `json:"protocol"`
	Path               string        `json:"path,omitempty"`
	Port               string        `json:"port"`
	Interval           time.Duration `json:"interval"`
	Timeout            time.Duration `json:"timeout"`
	HealthyThreshold   int           `json:"healthyThreshold"`
	UnhealthyThreshold int           `json:"unhealthyThreshold"`
	SuccessCodes       string        `json:"successCodes,omitempty"`
}

// Served says whether the workload takes traffic a rollout can drop: a
// Service in the input selects it, or the input holds no Service at all and
// it declares a container port (AssumedPort).
func (w *Workload) Served() bool { return len(w.Services) > 0 || w.AssumedPort != "" }

// DrainAfterTERM is what the app needs after SIGTERM: the requests that
// arrived up to the end of the stop window may run MaxRequestDuration, and
// the ones still running when the preStop ends must finish, then the app's
// own shutdown work.
//
// An app that drains (DrainDelay) takes new requests for that long after
// SIGTERM, and the last of them may run MaxRequestDuration too.
func (w *Workload) DrainAfterTERM(o Options, preStop time.Duration) time.Duration {
	d := o.StopWindow() + w.MaxRequestDuration - preStop
	if w.DrainDelay > 0 {
		d = max(d, w.DrainDelay+w.MaxRequestDuration)
	}
	return max(d, 0) + w.ShutdownTime
}

// ReadyStep is the worst-case time from a new pod's creation to Ready:
// its readiness probe passes, the controller registers it, and — with a
// readiness gate — the ALB's health checks pass and the gate is re-checked.
func (w *Workload) ReadyStep(o Options) time.Duration {
	var probe time.Duration
	for _, c := range w.Containers {
		if p := c.Readiness; p != nil {
			t := p.InitialDelay + time.Duration(p.SuccessThreshold)*p.Period
			if t > probe {
				probe = t
			}
		}
	}
	step := probe + time.Duration(w.MinReadySeconds)*time.Second
	if w.GateActive() {
		var hc time.Duration
		for _, r := range w.Routes {
			if r.TargetType == "ip" {
				t := o.ControllerLag + time.Duration(r.HealthCheck.HealthyThreshold)*r.HealthCheck.Interval + defaults.GateRequeue
				if t > hc {
					hc = t
				}
			}
		}
		step += hc
	}
	return step
}

// GateActive says whether new pods get a target-health readiness gate.
func (w *Workload) GateActive() bool { return w.ManualGate || (w.GateKnown && w.GateInjection) }

// HasIPRoute says whether any route sends ip targets to the workload.
func (w *Workload) HasIPRoute() bool {
	for _, r := range w.Routes {
		if r.TargetType == "ip" {
			return true
		}
	}
	return false
}

// ContainerPath is the field path of container i in the pod template.
func ContainerPath(i int, rest ...string) []string {
	return append([]string{"spec", "template", "spec", "containers", strconv.Itoa(i)}, rest...)
}
