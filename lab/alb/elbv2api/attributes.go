package elbv2api

import (
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
)

// maxSeconds are the API's upper bounds of the modelled *_seconds
// attributes (the lower bound is 0).
var maxSeconds = map[string]int{defaults.AttrDeregistrationDelay: 3600}

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
	for _, a := range s.tg.TargetGroupAttributes() {
		res.Attributes = append(res.Attributes, attributeXML{a.Key, s.text(a)})
	}
	return res
}

// text is a's value as the API writes it: durations in (scaled) seconds.
func (s *Server) text(a alb.Attribute) string {
	if a.Kind == alb.AttrDuration {
		return strconv.Itoa(s.seconds(a.Duration))
	}
	return a.Value
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
	current := s.tg.TargetGroupAttributes()
	var changes []alb.Attribute
	for i, kv := range kvs {
		c, err := s.change(current, i+1, kv["Key"], kv["Value"])
		if err != nil {
			return nil, err
		}
		if c.Kind != alb.AttrFixed {
			changes = append(changes, c)
		}
	}
	if len(changes) > 0 {
		if err := s.tg.SetTargetGroupAttributes(changes...); err != nil {
			return nil, errValidation("%v", err)
		}
	}
	return s.attributes("ModifyTargetGroupAttributesResult"), nil
}

// change reads Attributes.member.n (key=v) as a change of one of the
// current attributes. A fixed attribute may only be given its value.
func (s *Server) change(current []alb.Attribute, n int, key, v string) (alb.Attribute, error) {
	i := slices.IndexFunc(current, func(a alb.Attribute) bool { return a.Key == key })
	if i < 0 {
		return alb.Attribute{}, errValidation("Attributes.member.%d: target group attribute key %q is not recognized", n, key)
	}
	c := current[i]
	switch c.Kind {
	case alb.AttrFixed:
		if v != c.Value {
			return c, &apiError{400, "InvalidConfigurationRequest",
				fmt.Sprintf("Attributes.member.%d: %s=%s is not modelled by the rollsafe lab (only %s can change)", n, key, v, modelled(current))}
		}
	case alb.AttrBool:
		if v != "true" && v != "false" {
			return c, errValidation("Attributes.member.%d: %s must be true or false, got %q", n, key, v)
		}
		c.Value = v
	case alb.AttrDuration:
		hi, ok := maxSeconds[key]
		if !ok {
			hi = math.MaxInt32 // no documented bound: the API's integers are 32-bit
		}
		sec, err := strconv.Atoi(v)
		if err != nil || sec < 0 || sec > hi {
			return c, errValidation("Attributes.member.%d: %s must be an integer from 0 to %d, got %q", n, key, hi, v)
		}
		c.Duration = s.duration(sec)
	}
	return c, nil
}

// modelled names the attributes that can change.
func modelled(as []alb.Attribute) string {
	var keys []string
	for _, a := range as {
		if a.Kind != alb.AttrFixed {
			keys = append(keys, a.Key)
		}
	}
	return strings.Join(keys, ", ")
}
