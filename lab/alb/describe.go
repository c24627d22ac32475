package alb

import (
	"fmt"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
)

// The ELBv2 API's names for what this stand-in is: an HTTP target group of
// ip targets.
const (
	ProtocolHTTP = "HTTP"
	TargetTypeIP = "ip"
)

// TargetGroupDescription is what DescribeTargetGroups reports of a lab load
// balancer's target group; package elbv2api serves it for ALB and NLB
// stand-ins alike.
type TargetGroupDescription struct {
	Name            string // the target group's
	ARN             string
	LoadBalancerARN string
	Protocol        string // of the traffic to the targets: HTTP (ALB) or TCP (NLB)
	Port            int    // the target group's port
	TargetType      string // ip or instance
	// HealthCheckProtocol is HTTP or TCP. HealthCheck.Path and Matcher are
	// used, and reported, only by HTTP checks.
	HealthCheckProtocol string
	HealthCheck         HealthCheck
}

// Describe reports the target group as DescribeTargetGroups does.
func (lb *LB) Describe() TargetGroupDescription {
	return TargetGroupDescription{
		Name: lb.cfg.Name, ARN: lb.tgARN, LoadBalancerARN: lb.LoadBalancerARN(),
		Protocol: ProtocolHTTP, Port: lb.cfg.TargetPort, TargetType: TargetTypeIP,
		HealthCheckProtocol: ProtocolHTTP, HealthCheck: lb.cfg.HealthCheck,
	}
}

// AttributeKind says how an Attribute's value is read and written.
type AttributeKind int

const (
	// AttrFixed is an attribute the stand-in does not model: it is reported
	// with the value the stand-in behaves as (the AWS default wherever the
	// stand-in can behave so), and no other value can be set.
	AttrFixed AttributeKind = iota
	// AttrBool is a modelled attribute whose Value is "true" or "false".
	AttrBool
	// AttrDuration is a modelled *_seconds attribute; its value is
	// Duration, in lab time (the API converts seconds by its time scale).
	AttrDuration
)

// Attribute is one target group attribute under its ELBv2 API key, as
// DescribeTargetGroupAttributes lists it and ModifyTargetGroupAttributes
// sets it.
type Attribute struct {
	Key      string
	Kind     AttributeKind
	Value    string        // AttrFixed and AttrBool: the API's text
	Duration time.Duration // AttrDuration
}

// fixedAttributes are the ALB target group attributes the stand-in reports
// with their AWS defaults but does not model.
var fixedAttributes = []Attribute{
	{Key: "stickiness.enabled", Value: "false"},
	{Key: "stickiness.type", Value: "lb_cookie"},
	{Key: "stickiness.lb_cookie.duration_seconds", Value: "86400"},
	{Key: "slow_start.duration_seconds", Value: "0"},
	{Key: "load_balancing.algorithm.type", Value: "round_robin"},
	{Key: "load_balancing.cross_zone.enabled", Value: "use_load_balancer_configuration"},
}

// TargetGroupAttributes lists the target group attributes the stand-in
// reports, the modelled deregistration delay first.
func (lb *LB) TargetGroupAttributes() []Attribute {
	delay := Attribute{Key: defaults.AttrDeregistrationDelay, Kind: AttrDuration, Duration: lb.Attributes().DeregistrationDelay}
	return append([]Attribute{delay}, fixedAttributes...)
}

// SetTargetGroupAttributes sets modelled attributes (by Key, to Duration);
// a key the LB does not model is an error and changes nothing.
func (lb *LB) SetTargetGroupAttributes(changes ...Attribute) error {
	a := lb.Attributes()
	for _, c := range changes {
		if c.Key != defaults.AttrDeregistrationDelay {
			return NotModelled(c.Key)
		}
		a.DeregistrationDelay = c.Duration
	}
	return lb.SetAttributes(a)
}

// NotModelled is the error for setting an attribute a stand-in only reports.
func NotModelled(key string) error {
	return fmt.Errorf("target group attribute %q is not modelled by the rollsafe lab", key)
}

// ARN is an Elastic Load Balancing ARN in the account and region for
// resource ("targetgroup/NAME/ID", "loadbalancer/app/NAME/ID"): the one
// format both stand-ins and their ELBv2 API give out.
func ARN(region, account, resource string) string {
	return "arn:aws:elasticloadbalancing:" + region + ":" + account + ":" + resource
}
