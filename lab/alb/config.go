package alb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/timeline"
)

// Config describes one load balancer with one listener forwarding to one
// target group, the shape the AWS Load Balancer Controller builds for an
// Ingress. Durations are real durations: the lab scales them before they get
// here. Start from DefaultConfig, which holds the AWS API defaults.
type Config struct {
	// Listen is the loopback address of the listener ("127.0.0.1:0" picks a port).
	Listen string
	// Name is the load balancer's and the target group's name; it goes into
	// the ARNs, the access log and the ELBv2 API answers.
	Name string
	// Region and AccountID only decorate ARNs.
	Region    string
	AccountID string

	// ClientIdleTimeout is the listener's idle timeout
	// (idle_timeout.timeout_seconds, AWS default defaults.IdleTimeout): an
	// idle client connection is closed after it.
	ClientIdleTimeout time.Duration
	// TargetTimeout is how long the LB waits for the target to send data
	// before answering 504. The real ALB uses its idle timeout for this.
	TargetTimeout time.Duration
	// BackendIdleTimeout is how long an idle keep-alive connection to a
	// target is kept for reuse. The real ALB uses its idle timeout here too.
	BackendIdleTimeout time.Duration
	// ConnectTimeout bounds the TCP connect to a target (ALB:
	// defaults.ConnectTimeout, then 504). A connect to an IP made unreachable (LB.SetReachable) waits all
	// of it, as an unanswered SYN does.
	ConnectTimeout time.Duration

	// TargetPort is the target group's port, used when a target is
	// registered without one.
	TargetPort int

	// DialTarget, when set, opens every connection to a target (proxy and
	// health checks) instead of a plain TCP dial, within ConnectTimeout.
	// The lab passes a kube-proxy stand-in's DialContext for instance
	// targets, so a connect to a node's NodePort is refused, unanswered or
	// made straight to one pod as iptables DNAT makes it; a target IP made
	// unreachable (SetReachable) still goes unanswered first.
	DialTarget func(ctx context.Context, network, addr string) (net.Conn, error)

	HealthCheck HealthCheck

	// DeregistrationDelay is deregistration_delay.timeout_seconds (AWS
	// default defaults.DeregistrationDelay, range 0-3600 s): how long a deregistered target stays
	// draining; requests still in flight when it elapses are cut (502).
	DeregistrationDelay time.Duration

	// Nodes is how many LB nodes there are (one per availability zone on
	// AWS, at least two). Each client connection is served by one node, and
	// each node has its own view of the registered targets.
	Nodes int
	// Propagation is P: the nodes learn of a registration or
	// deregistration one after another, in a random order, evenly spread
	// up to P (with 3 nodes: after P/3, 2P/3 and P), so the last node stops
	// routing to a deregistered target exactly P after the deregistration —
	// the figure users measure by hand. AWS publishes none; DefaultConfig
	// takes the one public measurement, defaults.Propagation.
	Propagation time.Duration
	// Seed makes the propagation delays repeatable.
	Seed int64

	// AccessLog receives one ALB-format line per request; nil disables it.
	// Lines are buffered and flushed periodically and on Close. A write
	// error is kept: Err and Close return it.
	AccessLog io.Writer
	// Sink receives target state changes (Kind target) and per-node
	// propagation marks (Kind event). It is called from many goroutines at
	// once (health checkers, timers, Register's and Deregister's callers)
	// and must be safe for concurrent use; never while the LB holds a
	// lock, so it may call back into the LB. After its first error (or the
	// access log's) the LB sends it nothing more: Err and Close return
	// that error.
	Sink timeline.Sink
	// OnRequest is called once per request, on the request's goroutine,
	// after the response has been written. It must be fast.
	OnRequest func(*RequestInfo)
}

// HealthCheck holds the target group's active health check settings.
type HealthCheck struct {
	// Path of the GET the health checker sends.
	Path string
	// Port to check; 0 means the traffic port (AWS "traffic-port").
	Port int
	// Interval between checks of one target. DefaultConfig holds the ELBv2
	// API's defaults for this and the fields below, ControllerHealthCheck
	// the controller's Ingress annotation defaults.
	Interval time.Duration
	// Timeout of one check.
	Timeout time.Duration
	// HealthyThreshold consecutive successes make a target healthy.
	HealthyThreshold int
	// UnhealthyThreshold consecutive failures make it unhealthy.
	UnhealthyThreshold int
	// Matcher is the success-code spec: "200", "200,202", "200-299".
	Matcher string
}

// DefaultConfig returns the AWS API defaults for an ALB and its target
// group (package defaults has their sources), and the measured P.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:0",
		Name:               "rollsafe-lab",
		Region:             "us-east-1",
		AccountID:          "000000000000",
		ClientIdleTimeout:  defaults.IdleTimeout,
		TargetTimeout:      defaults.IdleTimeout,
		BackendIdleTimeout: defaults.IdleTimeout,
		ConnectTimeout:     defaults.ConnectTimeout,
		TargetPort:         80,
		HealthCheck: HealthCheck{
			Path:               defaults.HealthCheckPath,
			Interval:           defaults.APIHealthCheckInterval,
			Timeout:            defaults.APIHealthCheckTimeout,
			HealthyThreshold:   defaults.APIHealthyThreshold,
			UnhealthyThreshold: defaults.APIUnhealthyThreshold,
			Matcher:            defaults.HealthCheckMatcher,
		},
		DeregistrationDelay: defaults.DeregistrationDelay,
		Nodes:               3,
		Propagation:         defaults.Propagation,
		Seed:                1,
	}
}

// ControllerHealthCheck returns the AWS Load Balancer Controller's health
// check defaults for an Ingress (its annotations' defaults differ from the
// API's).
func ControllerHealthCheck() HealthCheck {
	return HealthCheck{Path: defaults.HealthCheckPath, Interval: defaults.IngressHealthCheckInterval,
		Timeout: defaults.IngressHealthCheckTimeout, HealthyThreshold: defaults.IngressHealthyThreshold,
		UnhealthyThreshold: defaults.IngressUnhealthyThreshold, Matcher: defaults.HealthCheckMatcher}
}

// validate says what is wrong with c, naming the field.
func (c *Config) validate() (matcher, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := CheckLoopback(c.Listen); err != nil {
		bad("alb: Listen %q: %v", c.Listen, err)
	}
	if c.Name == "" {
		bad("alb: Name is empty")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ClientIdleTimeout", c.ClientIdleTimeout},
		{"TargetTimeout", c.TargetTimeout},
		{"BackendIdleTimeout", c.BackendIdleTimeout},
		{"ConnectTimeout", c.ConnectTimeout},
		{"HealthCheck.Interval", c.HealthCheck.Interval},
		{"HealthCheck.Timeout", c.HealthCheck.Timeout},
	} {
		if d.v <= 0 {
			bad("alb: %s must be > 0, got %v", d.name, d.v)
		}
	}
	if c.DeregistrationDelay < 0 {
		bad("alb: DeregistrationDelay must be >= 0, got %v", c.DeregistrationDelay)
	}
	if c.Propagation < 0 {
		bad("alb: Propagation must be >= 0, got %v", c.Propagation)
	}
	if c.Nodes < 1 {
		bad("alb: Nodes must be >= 1, got %d", c.Nodes)
	}
	if c.TargetPort < 1 || c.TargetPort > 65535 {
		bad("alb: TargetPort %d out of range 1-65535", c.TargetPort)
	}
	hc := c.HealthCheck
	if hc.Port < 0 || hc.Port > 65535 {
		bad("alb: HealthCheck.Port %d out of range (0 = traffic port)", hc.Port)
	}
	if hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
		bad("alb: HealthCheck thresholds must be >= 1, got healthy %d unhealthy %d", hc.HealthyThreshold, hc.UnhealthyThreshold)
	}
	if len(hc.Path) == 0 || hc.Path[0] != '/' {
		bad("alb: HealthCheck.Path %q must start with /", hc.Path)
	}
	m, err := parseMatcher(hc.Matcher)
	if err != nil {
		bad("alb: HealthCheck.Matcher: %v", err)
	}
	return m, errors.Join(errs...)
}

// CheckLoopback enforces the lab's rule that everything stays on loopback:
// addr ("host:port") must have a loopback IP. Package nlb shares it.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("not a loopback address")
	}
	return nil
}
