// Package elbv2api serves the part of the Elastic Load Balancing v2 Query
// API that rollsafe uses to watch and drive a target group, answered from a
// running lab load balancer (a TargetGroup: *alb.LB or *nlb.LB):
// DescribeTargetGroups, DescribeTargetHealth, RegisterTargets,
// DeregisterTargets, DescribeTargetGroupAttributes and
// ModifyTargetGroupAttributes. The same aws-sdk-go-v2 code that watches AWS
// watches the lab, with BaseEndpoint pointing here.
package elbv2api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
)

const (
	apiVersion = "2015-12-01"
	xmlns      = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
)

// Options tune how the API presents the lab.
type Options struct {
	// TimeScale is the factor the lab shrank durations by: an API value of
	// N seconds is N*TimeScale of real time (0.01 replays 300 s in 3 s).
	// 0 means 1.
	TimeScale float64
}

// TargetGroup is a lab load balancer's target group, what the API answers
// from: *alb.LB and *nlb.LB are both one.
type TargetGroup interface {
	// Describe is what DescribeTargetGroups reports; it never changes.
	Describe() alb.TargetGroupDescription
	TargetHealth() []alb.TargetHealth
	HealthOf(t alb.Target) alb.TargetHealth
	Register(targets ...alb.Target) error
	Deregister(targets ...alb.Target) error
	TargetGroupAttributes() []alb.Attribute
	// SetTargetGroupAttributes sets the modelled attributes in changes, all
	// or none.
	SetTargetGroupAttributes(changes ...alb.Attribute) error
}

// Server answers the API for one target group.
type Server struct {
	tg    TargetGroup
	desc  alb.TargetGroupDescription
	scale float64

	ln  net.Listener
	srv *http.Server
}

// New returns a Server for tg; use it as an http.Handler or call Listen.
func New(tg TargetGroup, opts Options) *Server {
	s := &Server{tg: tg, desc: tg.Describe(), scale: opts.TimeScale}
	if s.scale <= 0 {
		s.scale = 1
	}
	return s
}

// Listen serves the API on a loopback address ("127.0.0.1:0" picks a port).
func (s *Server) Listen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("elbv2api: listen %q: not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("elbv2api: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// URL is the endpoint to give the SDK as BaseEndpoint.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops a server started with Listen.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// apiError is an error in the API's documented shape.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errValidation(format string, a ...any) *apiError {
	return &apiError{400, "ValidationError", fmt.Sprintf(format, a...)}
}

type handler func(s *Server, p params) (any, error)

var actions = map[string]handler{
	"DescribeTargetGroups":          (*Server).describeTargetGroups,
	"DescribeTargetHealth":          (*Server).describeTargetHealth,
	"RegisterTargets":               (*Server).registerTargets,
	"DeregisterTargets":             (*Server).deregisterTargets,
	"DescribeTargetGroupAttributes": (*Server).describeAttributes,
	"ModifyTargetGroupAttributes":   (*Server).modifyAttributes,
}

// ServeHTTP reads a Query-protocol request (form-encoded Action and
// Version, in the body or the URL) and answers in XML.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := requestID()
	if err := r.ParseForm(); err != nil {
		writeError(w, reqID, errValidation("cannot read the request: %v", err))
		return
	}
	p := params(r.Form)
	action := p.get("Action")
	if v := p.get("Version"); v != apiVersion {
		writeError(w, reqID, &apiError{400, "InvalidParameterValue", fmt.Sprintf("Version %q is not supported; use %s", v, apiVersion)})
		return
	}
	h, ok := actions[action]
	if !ok {
		writeError(w, reqID, &apiError{400, "InvalidAction", fmt.Sprintf("the action %q is not valid for this web service (the lab serves DescribeTargetGroups, DescribeTargetHealth, RegisterTargets, DeregisterTargets, DescribeTargetGroupAttributes, ModifyTargetGroupAttributes)", action)})
		return
	}
	result, err := h(s, p)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{400, "ValidationError", err.Error()}
		}
		writeError(w, reqID, ae)
		return
	}
	resp := response{
		XMLName: xml.Name{Local: action + "Response"}, Xmlns: xmlns,
		Result: result,
	}
	resp.Meta.RequestID = reqID
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	b, _ := xml.Marshal(resp)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

type response struct {
	XMLName xml.Name
	Xmlns   string `xml:"xmlns,attr"`
	Result  any
	Meta    struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	var er errorResponse
	er.Xmlns = xmlns
	er.Error.Type = "Sender"
	er.Error.Code = e.code
	er.Error.Message = e.msg
	er.RequestID = reqID
	b, _ := xml.Marshal(er)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(e.status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// seconds converts a lab duration to the API's whole seconds.
func (s *Server) seconds(d time.Duration) int {
	return int(math.Round(d.Seconds() / s.scale))
}

// duration converts API seconds to a lab duration.
func (s *Server) duration(sec int) time.Duration {
	return time.Duration(float64(sec) * s.scale * float64(time.Second))
}

// params reads the Query protocol's flattened lists ("Targets.member.1.Id").
type params map[string][]string

func (p params) get(k string) string {
	if v := p[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// list returns prefix.member.1, prefix.member.2, ... until one is missing.
func (p params) list(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := p[prefix+".member."+strconv.Itoa(i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// structs returns, for prefix.member.N.<field>, one map per N.
func (p params) structs(prefix string, fields ...string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		base := prefix + ".member." + strconv.Itoa(i) + "."
		m := map[string]string{}
		for _, f := range fields {
			if v, ok := p[base+f]; ok && len(v) > 0 {
				m[f] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}
