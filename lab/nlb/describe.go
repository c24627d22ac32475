package nlb

import (
	"strconv"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
)

// The connection termination attributes' keys (NLB user guide, target group
// attributes).
const (
	attrConnectionTermination = defaults.AttrConnectionTermination
	// TODO(defaults): AttrUnhealthyConnectionTermination belongs in package
	// defaults, next to AttrDeregistrationDelay.
	attrUnhealthyConnectionTermination = "target_health_state.unhealthy.connection_termination.enabled"
)

// fixedAttributes are the NLB target group attributes the stand-in reports
// but does not model, with the value it behaves as: the AWS default, except
// preserve_client_ip.enabled, which is false for instance targets too
// (loopback cannot forge the client's address; see the package comment).
var fixedAttributes = []alb.Attribute{
	{Key: "preserve_client_ip.enabled", Value: "false"},
	{Key: "proxy_protocol_v2.enabled", Value: "false"},
	{Key: "stickiness.enabled", Value: "false"},
	{Key: "stickiness.type", Value: "source_ip"},
	{Key: "load_balancing.cross_zone.enabled", Value: "use_load_balancer_configuration"},
	{Key: "target_health_state.unhealthy.draining_interval_seconds", Value: "0"},
}

// Describe reports the target group as DescribeTargetGroups does: a TCP
// target group of the configured target type and health check.
func (lb *LB) Describe() alb.TargetGroupDescription {
	return alb.TargetGroupDescription{
		Name: lb.cfg.Name, ARN: lb.tgARN, LoadBalancerARN: lb.LoadBalancerARN(),
		Protocol: ProtocolTCP, Port: lb.cfg.TargetPort, TargetType: lb.cfg.TargetType,
		HealthCheckProtocol: lb.cfg.HealthCheck.Protocol, HealthCheck: lb.cfg.HealthCheck.HealthCheck,
	}
}

// TargetGroupAttributes lists the target group attributes the stand-in
// reports, the modelled ones first.
func (lb *LB) TargetGroupAttributes() []alb.Attribute {
	a := lb.Attributes()
	return append([]alb.Attribute{
		{Key: defaults.AttrDeregistrationDelay, Kind: alb.AttrDuration, Duration: a.DeregistrationDelay},
		{Key: attrConnectionTermination, Kind: alb.AttrBool, Value: strconv.FormatBool(a.ConnectionTermination)},
		{Key: attrUnhealthyConnectionTermination, Kind: alb.AttrBool, Value: strconv.FormatBool(a.UnhealthyConnectionTermination)},
	}, fixedAttributes...)
}

// SetTargetGroupAttributes sets modelled attributes by Key (a duration to
// Duration, a flag to Value "true" or "false"), all or none: a key the LB
// does not model is an error and changes nothing.
func (lb *LB) SetTargetGroupAttributes(changes ...alb.Attribute) error {
	return lb.modifyAttributes(func(a *Attributes) error {
		for _, c := range changes {
			switch c.Key {
			case defaults.AttrDeregistrationDelay:
				a.DeregistrationDelay = c.Duration
			case attrConnectionTermination:
				a.ConnectionTermination = c.Value == "true"
			case attrUnhealthyConnectionTermination:
				a.UnhealthyConnectionTermination = c.Value == "true"
			default:
				return alb.NotModelled(c.Key)
			}
		}
		return nil
	})
}
