package elbv2api

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"github.com/rollsafe/rollsafe/lab/alb"
)

// checkARN answers TargetGroupNotFound for any ARN but the target group's own.
func (s *Server) checkARN(p params) error {
	arn := p.get("TargetGroupArn")
	if arn == "" {
		return errValidation("TargetGroupArn is required")
	}
	if arn != s.desc.ARN {
		return &apiError{400, "TargetGroupNotFound", fmt.Sprintf("One or more target groups not found: %s", arn)}
	}
	return nil
}

type targetGroupXML struct {
	TargetGroupArn             string
	TargetGroupName            string
	Protocol                   string
	Port                       int
	VpcId                      string
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int
	HealthCheckTimeoutSeconds  int
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	HealthCheckPath            string      `xml:",omitempty"`
	Matcher                    *matcherXML `xml:",omitempty"`
	LoadBalancerArns           []string    `xml:"LoadBalancerArns>member"`
	TargetType                 string
	ProtocolVersion            string `xml:",omitempty"`
	IpAddressType              string
}

type matcherXML struct{ HttpCode string }

type describeTargetGroupsResult struct {
	XMLName      struct{}         `xml:"DescribeTargetGroupsResult"`
	TargetGroups []targetGroupXML `xml:"TargetGroups>member"`
}

// describeTargetGroups answers for the one target group, if the filters
// (load balancer, ARNs, names) all name it.
func (s *Server) describeTargetGroups(p params) (any, error) {
	if lbArn := p.get("LoadBalancerArn"); lbArn != "" && lbArn != s.desc.LoadBalancerARN {
		return nil, &apiError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
	}
	for _, a := range p.list("TargetGroupArns") {
		if a != s.desc.ARN {
			return nil, &apiError{400, "TargetGroupNotFound", "One or more target groups not found"}
		}
	}
	for _, n := range p.list("Names") {
		if n != s.desc.Name {
			return nil, &apiError{400, "TargetGroupNotFound", "One or more target groups not found"}
		}
	}
	return describeTargetGroupsResult{TargetGroups: []targetGroupXML{s.targetGroup()}}, nil
}

// targetGroup describes the target group as AWS does: the path and the
// matcher only for an HTTP health check, the protocol version only for an
// HTTP target group.
func (s *Server) targetGroup() targetGroupXML {
	d, hc := s.desc, s.desc.HealthCheck
	tg := targetGroupXML{
		TargetGroupArn: d.ARN, TargetGroupName: d.Name,
		Protocol: d.Protocol, Port: d.Port, VpcId: "vpc-rollsafelab",
		HealthCheckProtocol: d.HealthCheckProtocol, HealthCheckPort: "traffic-port", HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: s.seconds(hc.Interval), HealthCheckTimeoutSeconds: s.seconds(hc.Timeout),
		HealthyThresholdCount: hc.HealthyThreshold, UnhealthyThresholdCount: hc.UnhealthyThreshold,
		LoadBalancerArns: []string{d.LoadBalancerARN},
		TargetType:       d.TargetType, IpAddressType: "ipv4",
	}
	if hc.Port != 0 {
		tg.HealthCheckPort = strconv.Itoa(hc.Port)
	}
	if d.HealthCheckProtocol == alb.ProtocolHTTP {
		tg.HealthCheckPath, tg.Matcher = hc.Path, &matcherXML{HttpCode: hc.Matcher}
	}
	if d.Protocol == alb.ProtocolHTTP {
		tg.ProtocolVersion = "HTTP1"
	}
	return tg
}

type targetHealthXML struct {
	Target struct {
		Id   string
		Port int
	}
	HealthCheckPort string
	TargetHealth    struct {
		State       string
		Reason      string `xml:",omitempty"`
		Description string `xml:",omitempty"`
	}
}

type describeTargetHealthResult struct {
	XMLName      struct{}          `xml:"DescribeTargetHealthResult"`
	Descriptions []targetHealthXML `xml:"TargetHealthDescriptions>member"`
}

func (s *Server) describeTargetHealth(p params) (any, error) {
	if err := s.checkARN(p); err != nil {
		return nil, err
	}
	asked, err := targets(p)
	if err != nil {
		return nil, err
	}
	var hs []alb.TargetHealth
	if len(asked) == 0 {
		hs = s.tg.TargetHealth()
	} else {
		for _, t := range asked {
			hs = append(hs, s.tg.HealthOf(t))
		}
	}
	res := describeTargetHealthResult{Descriptions: []targetHealthXML{}}
	for _, h := range hs {
		var x targetHealthXML
		x.Target.Id, x.Target.Port = h.Target.IP, h.Target.Port
		x.HealthCheckPort = strconv.Itoa(h.HealthCheckPort)
		x.TargetHealth.State, x.TargetHealth.Reason, x.TargetHealth.Description = string(h.State), h.Reason, h.Description
		res.Descriptions = append(res.Descriptions, x)
	}
	return res, nil
}

// targets reads Targets.member.N.{Id,Port}; a missing port means the
// target group's.
func targets(p params) ([]alb.Target, error) {
	var out []alb.Target
	for i, m := range p.structs("Targets", "Id", "Port", "AvailabilityZone") {
		t := alb.Target{IP: m["Id"]}
		if t.IP == "" {
			return nil, errValidation("Targets.member.%d.Id is required", i+1)
		}
		if ps, ok := m["Port"]; ok {
			port, err := strconv.Atoi(ps)
			if err != nil || port < 1 || port > 65535 {
				return nil, errValidation("Targets.member.%d.Port %q is not a port (1-65535)", i+1, ps)
			}
			t.Port = port
		}
		out = append(out, t)
	}
	return out, nil
}

// emptyResult is a result element with no content, as Register/DeregisterTargets answer.
type emptyResult struct {
	XMLName xml.Name
}

func (s *Server) registerTargets(p params) (any, error) {
	return s.changeTargets(p, "RegisterTargetsResult", s.tg.Register)
}

func (s *Server) deregisterTargets(p params) (any, error) {
	return s.changeTargets(p, "DeregisterTargetsResult", s.tg.Deregister)
}

func (s *Server) changeTargets(p params, result string, change func(...alb.Target) error) (any, error) {
	if err := s.checkARN(p); err != nil {
		return nil, err
	}
	ts, err := targets(p)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errValidation("Targets is required")
	}
	if err := change(ts...); err != nil {
		return nil, &apiError{400, "InvalidTarget", err.Error()}
	}
	return emptyResult{XMLName: xml.Name{Local: result}}, nil
}
