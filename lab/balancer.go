package lab

import (
	"fmt"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/alb/elbv2api"
	"github.com/rollsafe/rollsafe/lab/nlb"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// balancer is what a run needs of its load balancer stand-in, whichever it
// is (package alb for the ALB and the Classic ELB, package nlb): the
// target group the controller, the nodes and the ELBv2 API drive, and where
// clients reach it.
type balancer interface {
	elbv2api.TargetGroup
	URL() string
	TargetGroupARN() string
	SetReachable(ip string, reachable bool) error
	Close() error
}

// lbFacts are the load balancer's settings the rest of the run reads, at
// the lab's time scale.
type lbFacts struct {
	region string
	// clientIdle is the listener's idle timeout (the ALB's and CLB's
	// idle_timeout, the NLB's TCP idle timeout).
	clientIdle time.Duration
	// targetTimeout is how long the LB waits for a target's answer: the
	// ALB's idle timeout; an NLB, which answers nothing itself, its TCP idle
	// timeout.
	targetTimeout time.Duration
	hc            alb.HealthCheck
	// probeIdle is when the prober closes an idle keep-alive connection:
	// before the ALB's idle timeout closes it (half of it, as `rollsafe
	// probe` has it on AWS); behind an NLB, whose 350 s TCP idle timeout is
	// far off, probe's default.
	probeIdle time.Duration
}

// lbName names each kind of load balancer in messages.
var lbName = map[string]string{LBALB: "ALB", LBCLB: "CLB", LBNLB: "NLB"}

// startBalancer starts the topology's load balancer stand-in.
func (r *run) startBalancer() error {
	if r.topo.TCP {
		lb, err := nlb.New(r.nlbConfig())
		if err != nil {
			return fmt.Errorf("%s stand-in: %w", lbName[r.topo.LB], err)
		}
		c := lb.Config()
		r.lb, r.nlb = lb, lb
		r.lbf = lbFacts{region: c.Region, clientIdle: c.IdleTimeout, targetTimeout: c.IdleTimeout, hc: c.HealthCheck.HealthCheck,
			probeIdle: min(c.IdleTimeout/2, r.scale.Of(probe.DefaultIdleConnTimeout))}
		return nil
	}
	lb, err := alb.New(r.lbConfig())
	if err != nil {
		return fmt.Errorf("%s stand-in: %w", lbName[r.topo.LB], err)
	}
	c := lb.Config()
	r.lb, r.alb = lb, lb
	r.lbf = lbFacts{region: c.Region, clientIdle: c.ClientIdleTimeout, targetTimeout: c.TargetTimeout, hc: c.HealthCheck,
		probeIdle: c.ClientIdleTimeout / 2}
	return nil
}

// nlbConfig is the NLB stand-in's config for the scenario: the controller's
// Service health check defaults with the scenario's, the deregistration
// delay, and the users' 120 s propagation.
func (r *run) nlbConfig() nlb.Config {
	cfg := nlb.DefaultConfig()
	cfg.Name = "k8s-lab-" + r.s.Name
	if r.o.Listen != "" {
		cfg.Listen = r.o.Listen
	}
	cfg.TargetType = nlb.TargetTypeIP
	if r.topo.Instance {
		cfg.TargetType = nlb.TargetTypeInstance
		cfg.DialTarget = r.nodes.dial
	}
	cfg.TargetPort = AppPort
	cfg.HealthCheck = nlb.ControllerHealthCheck()
	if r.s.Template != nil {
		// Replayed manifests: their check (withRoute), TCP unless they ask
		// for HTTP.
		cfg.HealthCheck.HealthCheck = r.s.HealthCheck
		if r.s.HealthCheckProtocol == nlb.ProtocolHTTP {
			cfg.HealthCheck.Protocol = nlb.ProtocolHTTP
		}
	}
	if r.topo.LB == LBCLB {
		cfg = r.clbTCP(cfg)
	}
	cfg.DeregistrationDelay = r.s.DeregistrationDelay
	cfg.DeregistrationPropagation = r.s.Propagation
	if r.s.LBIdleTimeout > 0 {
		cfg.IdleTimeout = r.s.LBIdleTimeout
	}
	cfg = cfg.Scaled(r.o.TimeScale)
	if r.nodes != nil {
		if p := r.nodes.healthCheckPort(); p != 0 {
			cfg.HealthCheck.Protocol, cfg.HealthCheck.Port, cfg.HealthCheck.Path = nlb.ProtocolHTTP, p, clbHealthCheckLocalPath
		}
	}
	cfg.Sink = func(rec *timeline.Record) error {
		r.flows.observe(rec)
		return r.emit(rec)
	}
	return cfg
}

// clbTCP makes the NLB stand-in a Classic ELB's TCP listener: the
// provider's health check (TCP on the NodePort; clbHealthCheck), and the
// connections to a deregistered instance closed when draining ends, at
// once with draining off. The Classic Load Balancer guide (configure
// connection draining): without draining "any in-flight requests made to
// instances that are de-registering or unhealthy are not completed"; with
// it, at the timeout "the load balancer forcibly closes connections to the
// de-registering instance", while in-flight requests to an instance that
// turns unhealthy "are completed" (the timeout does not apply to them).
// Its P is the lab's, set by the scenario: no measurement of a Classic
// ELB's exists.
func (r *run) clbTCP(cfg nlb.Config) nlb.Config {
	cfg.Name = "k8s-lab-clb-" + r.s.Name
	cfg.HealthCheck = nlb.HealthCheck{Protocol: nlb.ProtocolTCP, HealthCheck: r.s.HealthCheck}
	cfg.ConnectionTermination = true
	cfg.UnhealthyConnectionTermination = r.s.DeregistrationDelay == 0
	return cfg
}
