package nlb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/timeline"
)

// Health check protocols an NLB target group offers for TCP traffic.
const (
	ProtocolTCP  = "TCP"
	ProtocolHTTP = alb.ProtocolHTTP
)

// Target types. They change nothing in how the stand-in balances: an ip
// target is a pod address, an instance target a node address on the
// Service's NodePort (kube-proxy forwards from there); the lab decides which
// addresses to register. The type is kept in Config for an ELBv2 API to
// describe the target group.
const (
	TargetTypeIP       = alb.TargetTypeIP
	TargetTypeInstance = "instance"
)

// Config describes one Network Load Balancer with one TCP listener
// forwarding to one target group, the shape the AWS Load Balancer Controller
// builds for a Service of type LoadBalancer. Durations are real durations:
// the lab shrinks them (Scaled) before they get here. Start from
// DefaultConfig, which holds the AWS API defaults.
type Config struct {
	// Listen is the loopback address of the TCP listener ("127.0.0.1:0"
	// picks a port).
	Listen string
	// Name is the load balancer's and the target group's name; it goes into
	// the ARNs and the records.
	Name string
	// Region and AccountID only decorate ARNs.
	Region    string
	AccountID string
	// TargetType is TargetTypeIP or TargetTypeInstance.
	TargetType string
	// TargetPort is the target group's port, used when a target is
	// registered without one.
	TargetPort int

	HealthCheck HealthCheck

	// DeregistrationDelay is deregistration_delay.timeout_seconds (default
	// 300 s, range 0-3600 s; NLB user guide, target group attributes): how
	// long a deregistered target stays draining before it is unused.
	DeregistrationDelay time.Duration
	// DeregistrationPropagation is how long a deregistered target keeps
	// getting new connections. AWS says the load balancer "stops creating new
	// connections" at once (NLB user guide, deregistration delay); users
	// measure about 2 minutes whatever the delay: "deregistration takes at
	// least 2 minutes regardless of the deregistration delay setting"
	// (aws-load-balancer-controller#2366), the same with a 5 s delay (#3270),
	// "the effective minimum delay seems to be 120 seconds"
	// (aws/containers-roadmap#470). Default 120 s. The target stays draining
	// until both this and DeregistrationDelay have passed (#3270: a 5 s delay,
	// about 2 minutes of draining).
	DeregistrationPropagation time.Duration
	// ConnectionTermination is
	// deregistration_delay.connection_termination.enabled (default false;
	// NLB user guide, target group attributes): true closes the connections
	// still open to a deregistered target when it becomes unused; false lets
	// them flow on ("if the deregistered target stays healthy and an existing
	// connection is not idle, the load balancer can continue to send traffic
	// to the target").
	ConnectionTermination bool
	// UnhealthyConnectionTermination is
	// target_health_state.unhealthy.connection_termination.enabled (NLB user
	// guide, target group attributes, connection termination for unhealthy
	// targets; default true, as the Pulumi/Terraform AWS provider documents
	// it): once a target turns unhealthy, whichever end of one of its
	// connections sends next is reset ("the load balancer sends a TCP RST for
	// packets received on the client connections associated with the target,
	// unless the unhealthy target triggers the load balancer to fail open";
	// NLB user guide, health checks).
	UnhealthyConnectionTermination bool
	// IdleTimeout is the listener's tcp.idle_timeout.seconds (default 350 s,
	// range 60-6000 s; NLB user guide, update the TCP idle timeout): a flow
	// with no data either way for that long is forgotten, and "if a client
	// or target sends data after the idle timeout period elapses, it
	// receives a TCP RST packet" (NLB user guide, connection idle timeout,
	// 2023). It also bounds the connect to a target: the client's SYN is the
	// flow's only packet until the target answers.
	IdleTimeout time.Duration

	// DialTarget, when set, opens each connection to a target instead of a
	// plain TCP dial (within IdleTimeout; it must return a *net.TCPConn).
	// The lab passes a kube-proxy stand-in's DialContext for instance
	// targets, so the connect reaches the pod iptables DNAT would pick; the
	// FlowClosed record's "peer" then names that pod.
	DialTarget func(ctx context.Context, network, addr string) (net.Conn, error)

	// Seed makes the per-connection target choice repeatable.
	Seed int64

	// Sink receives target state changes (Kind target, as package alb
	// records them), the moment a deregistration stops new connections and
	// one record per connection opened and closed (Kind event, Source lab:
	// ground truth). It is called from many goroutines at once and must be
	// safe for concurrent use; never while the LB holds a lock, so it may
	// call back into the LB. After its first error the LB sends it nothing
	// more: Err and Close return that error.
	Sink timeline.Sink
}

// HealthCheck holds the target group's active health check settings: the
// ELBv2 settings package alb has (with an NLB's defaults: DefaultConfig,
// ControllerHealthCheck) and the protocol. Path and Matcher apply to HTTP
// checks only; an NLB accepts success codes 200-599.
type HealthCheck struct {
	// Protocol is ProtocolTCP (a check passes when the connect does; the
	// API's default for an NLB) or ProtocolHTTP (a GET of Path).
	Protocol string
	alb.HealthCheck
}

// DefaultConfig returns the AWS API defaults for a Network Load Balancer and
// its target group (NLB user guide: target group health checks, target
// group attributes, TCP idle timeout; CreateTargetGroup API reference), with
// DeregistrationPropagation from the users' measurements.
func DefaultConfig() Config {
	return Config{
		Listen:     "127.0.0.1:0",
		Name:       "rollsafe-lab-nlb",
		Region:     "us-east-1",
		AccountID:  "000000000000",
		TargetType: TargetTypeIP,
		TargetPort: 80,
		// Interval 30 s, timeout 10 s (TCP; 6 s for HTTP), healthy 5,
		// unhealthy 2, success codes 200-399.
		HealthCheck: HealthCheck{Protocol: ProtocolTCP, HealthCheck: alb.HealthCheck{
			Path: defaults.HealthCheckPath, Interval: defaults.APIHealthCheckInterval, Timeout: defaults.NLBTCPHealthCheckTimeout,
			HealthyThreshold: defaults.APIHealthyThreshold, UnhealthyThreshold: defaults.APIUnhealthyThreshold,
			Matcher: defaults.NLBMatcher,
		}},
		DeregistrationDelay:            defaults.DeregistrationDelay,
		DeregistrationPropagation:      defaults.NLBPropagation,
		ConnectionTermination:          defaults.NLBConnectionTermination,
		UnhealthyConnectionTermination: defaults.NLBUnhealthyConnectionTermination,
		IdleTimeout:                    defaults.NLBTCPIdleTimeout,
		Seed:                           1,
	}
}

// ControllerHealthCheck returns the AWS Load Balancer Controller's health
// check defaults for a Service's NLB (service annotations
// aws-load-balancer-healthcheck-*: protocol TCP, traffic port, interval 10 s,
// timeout 10 s, healthy 3, unhealthy 3, success codes 200-399), which differ
// from the API's.
func ControllerHealthCheck() HealthCheck {
	return HealthCheck{Protocol: ProtocolTCP, HealthCheck: alb.HealthCheck{
		Path: defaults.HealthCheckPath, Interval: defaults.NLBHealthCheckInterval, Timeout: defaults.NLBHealthCheckTimeout,
		HealthyThreshold: defaults.NLBHealthyThreshold, UnhealthyThreshold: defaults.NLBUnhealthyThreshold,
		Matcher: defaults.NLBMatcher,
	}}
}

// Scaled returns c with every duration multiplied by scale (the lab's
// --time-scale; 0 or less means 1, real time, as kubelet.TimeScale has it):
// the one place that lists them, so none is left at spec time.
func (c Config) Scaled(scale float64) Config {
	if scale <= 0 {
		scale = 1
	}
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	c.HealthCheck.Interval, c.HealthCheck.Timeout = s(c.HealthCheck.Interval), s(c.HealthCheck.Timeout)
	c.DeregistrationDelay = s(c.DeregistrationDelay)
	c.DeregistrationPropagation = s(c.DeregistrationPropagation)
	c.IdleTimeout = s(c.IdleTimeout)
	return c
}

// validate says what is wrong with c, naming the field.
func (c *Config) validate() (alb.SuccessCodes, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := alb.CheckLoopback(c.Listen); err != nil {
		bad("nlb: Listen %q: %v", c.Listen, err)
	}
	if c.Name == "" {
		bad("nlb: Name is empty")
	}
	if c.TargetType != TargetTypeIP && c.TargetType != TargetTypeInstance {
		bad("nlb: TargetType %q is neither %q nor %q", c.TargetType, TargetTypeIP, TargetTypeInstance)
	}
	if c.TargetPort < 1 || c.TargetPort > 65535 {
		bad("nlb: TargetPort %d out of range 1-65535", c.TargetPort)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HealthCheck.Interval", c.HealthCheck.Interval}, {"HealthCheck.Timeout", c.HealthCheck.Timeout}, {"IdleTimeout", c.IdleTimeout}} {
		if d.v <= 0 {
			bad("nlb: %s must be > 0, got %v", d.name, d.v)
		}
	}
	if c.DeregistrationDelay < 0 || c.DeregistrationPropagation < 0 {
		bad("nlb: DeregistrationDelay and DeregistrationPropagation must be >= 0, got %v and %v", c.DeregistrationDelay, c.DeregistrationPropagation)
	}
	codes, err := c.HealthCheck.validate()
	errs = append(errs, err)
	return codes, errors.Join(errs...)
}

func (hc *HealthCheck) validate() (alb.SuccessCodes, error) {
	var errs []error
	if hc.Protocol != ProtocolTCP && hc.Protocol != ProtocolHTTP {
		errs = append(errs, fmt.Errorf("nlb: HealthCheck.Protocol %q is neither TCP nor HTTP", hc.Protocol))
	}
	if hc.Port < 0 || hc.Port > 65535 {
		errs = append(errs, fmt.Errorf("nlb: HealthCheck.Port %d out of range (0 = traffic port)", hc.Port))
	}
	if hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
		errs = append(errs, fmt.Errorf("nlb: HealthCheck thresholds must be >= 1, got healthy %d unhealthy %d", hc.HealthyThreshold, hc.UnhealthyThreshold))
	}
	if hc.Protocol != ProtocolHTTP {
		return nil, errors.Join(errs...)
	}
	if len(hc.Path) == 0 || hc.Path[0] != '/' {
		errs = append(errs, fmt.Errorf("nlb: HealthCheck.Path %q must start with /", hc.Path))
	}
	codes, err := alb.ParseSuccessCodes(hc.Matcher, 200, 599)
	if err != nil {
		errs = append(errs, fmt.Errorf("nlb: HealthCheck.Matcher: %v", err))
	}
	return codes, errors.Join(errs...)
}
