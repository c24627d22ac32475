package elbv2api

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
)

const attrDeregistrationDelay = defaults.AttrDeregistrationDelay

// storedAttrs are target group attributes the lab reports with their AWS
// defaults but does not model; setting one to another value is refused
// rather than silently ignored.
var storedAttrs = []struct{ key, def string }{
	{"stickiness.enabled", "false"},
	{"stickiness.type", "lb_cookie"},
	{"stickiness.lb_cookie.duration_seconds", "86400"},
	{"slow_start.duration_seconds", "0"},
	{"load_balancing.algorithm.type", "round_robin"},
	{"load_balancing.cross_zone.enabled", "use_load_balancer_configuration"},
}

type attributeXML struct {
	Key   string
	Value string
}

type attributesResult struct {
	XMLName    xml.Name
	Attributes []attributeXML `xml:"Attributes>member"`
}

func (s *Server) attributes(result string) attributesResult {
	res := attributesResult{XMLName: xml.Name{Local: result}}
	res.Attributes = append(res.Attributes, attributeXML{attrDeregistrationDelay,
		strconv.Itoa(s.seconds(s.lb.Attributes().DeregistrationDelay))})
	for _, a := range storedAttrs {
		res.Attributes = append(res.Attributes, attributeXML{a.key, a.def})
	}
	return res
}

func (s *Server) describeAttributes(p params) (any, error) {
	if err := s.checkARN(p); err != nil {
		return nil, err
	}
	return s.attributes("DescribeTargetGroupAttributesResult"), nil
}

// modifyAttributes validates every attribute before changing any, so a
// bad request changes nothing, as on AWS.
func (s *Server) modifyAttributes(p params) (any, error) {
	if err := s.checkARN(p); err != nil {
		return nil, err
	}
	kvs := p.structs("Attributes", "Key", "Value")
	if len(kvs) == 0 {
		return nil, errValidation("Attributes is required")
	}
	delay := -1
	for i, kv := range kvs {
		k, v := kv["Key"], kv["Value"]
		switch {
		case k == attrDeregistrationDelay:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 3600 {
				return nil, errValidation("Attributes.member.%d: %s must be an integer from 0 to 3600, got %q", i+1, k, v)
			}
			delay = n
		case isStored(k):
			if attrDefault(k) != v {
				return nil, &apiError{400, "InvalidConfigurationRequest",
					fmt.Sprintf("Attributes.member.%d: %s=%s is not modelled by the rollsafe lab (only %s can change)", i+1, k, v, attrDeregistrationDelay)}
			}
		default:
			return nil, errValidation("Attributes.member.%d: target group attribute key %q is not recognized", i+1, k)
		}
	}
	if delay >= 0 {
		if err := s.lb.SetAttributes(alb.Attributes{DeregistrationDelay: s.duration(delay)}); err != nil {
			return nil, errValidation("%v", err)
		}
	}
	return s.attributes("ModifyTargetGroupAttributesResult"), nil
}

func isStored(k string) bool {
	_, ok := attrDefaultOK(k)
	return ok
}

func attrDefault(k string) string {
	v, _ := attrDefaultOK(k)
	return v
}

func attrDefaultOK(k string) (string, bool) {
	for _, a := range storedAttrs {
		if a.key == k {
			return a.def, true
		}
	}
	return "", false
}
