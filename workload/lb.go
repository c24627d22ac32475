package workload

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/manifest"
)

// The annotation prefixes, short for the many keys built from them.
const (
	albPrefix = defaults.ALBAnnotationPrefix
	svcPrefix = defaults.ServiceAnnotationPrefix
)

// albHealthDefaults are the controller's Ingress annotation defaults (not
// the ELBv2 API's).
var albHealthDefaults = HealthCheck{Protocol: "HTTP", Path: defaults.HealthCheckPath, Port: "traffic-port",
	Interval: defaults.IngressHealthCheckInterval, Timeout: defaults.IngressHealthCheckTimeout,
	HealthyThreshold: defaults.IngressHealthyThreshold, UnhealthyThreshold: defaults.IngressUnhealthyThreshold,
	SuccessCodes: defaults.HealthCheckMatcher}

// nlbHealthDefaults are the controller's Service annotation defaults.
var nlbHealthDefaults = HealthCheck{Protocol: "TCP", Port: "traffic-port", Interval: defaults.NLBHealthCheckInterval,
	Timeout: defaults.NLBHealthCheckTimeout, HealthyThreshold: defaults.NLBHealthyThreshold,
	UnhealthyThreshold: defaults.NLBUnhealthyThreshold}

// annotated finds an annotation on the first object that has it: the
// controller gives Service annotations priority over Ingress ones.
type annotated []*manifest.Object

func (a annotated) get(key string) (string, *manifest.Object, int) {
	for _, o := range a {
		if o == nil {
			continue
		}
		if v, ok := AnnotationsOf(o)[key]; ok {
			return v, o, o.Line("metadata", "annotations", key)
		}
	}
	return "", nil, 0
}

// AnnotationsOf returns the annotations of a Service, Ingress or
// TargetGroupBinding, the objects that carry load balancer settings.
func AnnotationsOf(o *manifest.Object) map[string]string {
	switch x := o.Obj.(type) {
	case *corev1.Service:
		return x.Annotations
	case *networkingv1.Ingress:
		return x.Annotations
	case *manifest.TargetGroupBinding:
		return x.Annotations
	}
	return nil
}

// routes adds every load balancer path through Service s.
func (g *graph) routes(w *Workload, s *manifest.Object, svc *corev1.Service) {
	first := len(w.Routes)
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		w.Routes = append(w.Routes, g.serviceRoute(s, svc))
	}
	for _, io := range g.ingresses[w.Namespace] {
		ing := io.Obj.(*networkingv1.Ingress)
		if !routesTo(ing, svc.Name) {
			continue
		}
		switch {
		case g.isALB(ing):
			w.Ingresses = append(w.Ingresses, io)
			w.Routes = append(w.Routes, g.albRoute(io, s))
		case g.isNginx(ing):
			w.Ingresses = append(w.Ingresses, io)
			w.Routes = append(w.Routes, g.nginxRoute(io, s))
		}
	}
	for _, to := range g.tgbs[w.Namespace] {
		tgb := to.Obj.(*manifest.TargetGroupBinding)
		if tgb.Spec.ServiceRef.Name != svc.Name || controllerManaged(tgb.Labels) {
			continue // the controller's own bindings duplicate an Ingress route
		}
		w.TargetGroupBindings = append(w.TargetGroupBindings, to)
		r := Route{LB: "TargetGroup", Front: to, Service: s, Via: to.Ref(g.opts.DefaultNamespace),
			DeregistrationDelay: defaults.DeregistrationDelay, HealthCheck: albHealthDefaults}
		if tgb.Spec.TargetType != nil {
			r.TargetType = *tgb.Spec.TargetType
			r.TargetTypeAt.Line = to.Line("spec", "targetType")
		}
		w.Routes = append(w.Routes, r)
	}
	for i := first; i < len(w.Routes); i++ {
		w.Routes[i].Local = isLocal(svc) // it matters where targets are nodes
	}
}

// isLocal says whether svc keeps external traffic on the node it arrives
// at (externalTrafficPolicy Local, for NodePort and LoadBalancer Services).
func isLocal(svc *corev1.Service) bool {
	return svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func controllerManaged(l map[string]string) bool {
	for k := range l {
		if strings.HasPrefix(k, "ingress.k8s.aws/") || strings.HasPrefix(k, "service.k8s.aws/") {
			return true
		}
	}
	return false
}

func routesTo(ing *networkingv1.Ingress, svc string) bool {
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil && b.Service.Name == svc {
		return true
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil && p.Backend.Service.Name == svc {
				return true
			}
		}
	}
	return false
}

// albRoute resolves an Ingress route: Service annotations first, then the
// Ingress; the idle timeout from any member of the IngressGroup.
func (g *graph) albRoute(io, s *manifest.Object) Route {
	meta := Where{Line: io.Line("metadata")}
	r := Route{LB: "ALB", L7: true, Front: io, Service: s, Via: io.Ref(g.opts.DefaultNamespace),
		Group: groupName(g, io), TargetType: "instance", DeregistrationDelay: defaults.DeregistrationDelay,
		IdleTimeout: defaults.IdleTimeout, HealthCheck: albHealthDefaults, DelayAt: meta, TargetTypeAt: meta,
		HealthAt: meta, DelayKey: albPrefix + "target-group-attributes"}
	if strings.HasPrefix(r.Group, "implicit:") {
		r.Group = ""
	}
	a := annotated{s, io}
	if v, o, line := a.get(albPrefix + "target-type"); o != nil {
		r.TargetType, r.TargetTypeAt = strings.TrimSpace(v), Where{o, line}
		if r.TargetType != "ip" && r.TargetType != "instance" {
			g.errorf(o, line, "annotation %starget-type %q: want ip or instance", albPrefix, v)
		}
	}
	if v, o, line := a.get(albPrefix + "target-group-attributes"); o != nil {
		if d, ok := g.attr(o, line, v, defaults.AttrDeregistrationDelay); ok {
			r.DeregistrationDelay, r.DelayAt = d, Where{o, line}
		}
	}
	// Load balancer attributes live on the ALB, shared by the whole group.
	members := append(annotated{io}, g.groups[groupName(g, io)]...)
	if v, o, line := members.get(albPrefix + "load-balancer-attributes"); o != nil {
		if d, ok := g.attr(o, line, v, defaults.AttrIdleTimeout); ok {
			r.IdleTimeout = d
		}
	}
	r.HealthCheck = g.health(a, albPrefix, albHealthDefaults, &r.HealthAt.Line,
		"healthcheck-interval-seconds", "healthcheck-timeout-seconds", "healthy-threshold-count",
		"unhealthy-threshold-count", "healthcheck-path", "healthcheck-port", "healthcheck-protocol", "success-codes")
	return r
}

// serviceRoute resolves a Service of type LoadBalancer: an NLB made by the
// controller (loadBalancerClass or aws-load-balancer-type external/nlb-ip),
// an in-tree NLB, or an in-tree Classic ELB.
func (g *graph) serviceRoute(s *manifest.Object, svc *corev1.Service) Route {
	a := annotated{s}
	lbType, _, _ := a.get(defaults.LBTypeAnnotation)
	controller := lbType == "external" || lbType == "nlb-ip" ||
		(svc.Spec.LoadBalancerClass != nil && *svc.Spec.LoadBalancerClass == defaults.NLBLoadBalancerClass)
	meta := Where{Line: s.Line("metadata")}
	r := Route{Front: s, Service: s, Via: s.Ref(g.opts.DefaultNamespace), TargetType: "instance",
		DelayAt: meta, TargetTypeAt: meta, HealthAt: meta}
	switch {
	case controller:
		r.LB, r.DeregistrationDelay, r.DelayKey = "NLB", defaults.DeregistrationDelay, defaults.NLBTargetGroupAttributesAnnotation
		r.Controller = true
		if lbType == "nlb-ip" {
			r.TargetType = "ip"
		}
		if v, o, line := a.get(svcPrefix + "aws-load-balancer-nlb-target-type"); o != nil {
			r.TargetType, r.TargetTypeAt.Line = strings.TrimSpace(v), line
		}
		if v, o, line := a.get(r.DelayKey); o != nil {
			if d, ok := g.attr(o, line, v, defaults.AttrDeregistrationDelay); ok {
				r.DeregistrationDelay, r.DelayAt.Line = d, line
			}
		}
		hc := nlbHealthDefaults
		if r.TargetType == "instance" && isLocal(svc) {
			hc = nlbLocalHealthDefaults
		}
		r.HealthCheck = g.health(a, svcPrefix+"aws-load-balancer-", hc, &r.HealthAt.Line,
			"healthcheck-interval", "healthcheck-timeout", "healthcheck-healthy-threshold",
			"healthcheck-unhealthy-threshold", "healthcheck-path", "healthcheck-port", "healthcheck-protocol",
			"healthcheck-success-codes")
	case lbType == "nlb":
		r.LB, r.DeregistrationDelay = "NLB", defaults.DeregistrationDelay
		hc := inTreeNLBHealthDefaults
		if isLocal(svc) {
			hc = inTreeNLBLocalHealthDefaults
		}
		r.HealthCheck = g.health(a, svcPrefix+"aws-load-balancer-", hc, &r.HealthAt.Line,
			"healthcheck-interval", "healthcheck-timeout", "healthcheck-healthy-threshold",
			"healthcheck-unhealthy-threshold", "healthcheck-path", "healthcheck-port", "healthcheck-protocol",
			"") // the in-tree provider reads no success-codes annotation
	default:
		g.clbRoute(&r, a, svc)
	}
	return r
}

// inTreeNLBHealthDefaults are the in-tree provider's NLB health check
// defaults: TCP on the traffic port.
var inTreeNLBHealthDefaults = HealthCheck{Protocol: "TCP", Port: "traffic-port", Interval: defaults.InTreeNLBHealthCheckInterval,
	Timeout: defaults.InTreeNLBHealthCheckTimeout, HealthyThreshold: defaults.InTreeNLBHealthCheckThreshold,
	UnhealthyThreshold: defaults.InTreeNLBHealthCheckThreshold}

// inTreeNLBLocalHealthDefaults are the in-tree provider's NLB health check
// for externalTrafficPolicy Local: HTTP on the health-check node port.
var inTreeNLBLocalHealthDefaults = HealthCheck{Protocol: "HTTP", Path: "/healthz", Port: "healthCheckNodePort",
	Interval: defaults.InTreeNLBLocalHealthCheckInterval, Timeout: defaults.InTreeNLBLocalHealthCheckTimeout,
	HealthyThreshold: defaults.InTreeNLBLocalHealthCheckThreshold, UnhealthyThreshold: defaults.InTreeNLBLocalHealthCheckThreshold}

// nlbLocalHealthDefaults are the controller's NLB health check for
// instance targets of a Local Service: HTTP /healthz on the health-check
// node port.
var nlbLocalHealthDefaults = HealthCheck{Protocol: "HTTP", Path: "/healthz", Port: "healthCheckNodePort",
	Interval: defaults.NLBLocalHealthCheckInterval, Timeout: defaults.NLBLocalHealthCheckTimeout,
	HealthyThreshold: defaults.NLBLocalHealthyThreshold, UnhealthyThreshold: defaults.NLBLocalUnhealthyThreshold}

// clbHealthDefaults are the in-tree provider's Classic ELB health check
// defaults; TCP on the first NodePort unless externalTrafficPolicy Local
// or the annotations say otherwise.
var clbHealthDefaults = HealthCheck{Protocol: "TCP", Port: "traffic-port", Interval: defaults.CLBHealthCheckInterval,
	Timeout: defaults.CLBHealthCheckTimeout, HealthyThreshold: defaults.CLBHealthyThreshold,
	UnhealthyThreshold: defaults.CLBUnhealthyThreshold}

// clbRoute resolves the in-tree provider's Classic ELB as the provider
// reads its annotations (aws.go): draining off unless enabled, whole
// seconds for the timeouts, the backend protocol compared as written
// (buildListener). DeregistrationDelay holds the draining timeout, 0
// while draining is off.
func (g *graph) clbRoute(r *Route, a annotated, svc *corev1.Service) {
	r.LB, r.IdleTimeout, r.HealthCheck = "CLB", defaults.CLBIdleTimeout, clbHealthDefaults
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		// The provider then asks each node's health-check node port
		// whether it has a ready endpoint (servicehelpers.GetServiceHealthCheckPathPort).
		r.HealthCheck.Protocol, r.HealthCheck.Path, r.HealthCheck.Port = "HTTP", "/healthz", "healthCheckNodePort"
	}
	bp, _, _ := a.get(defaults.BackendProtocolAnnotation)
	r.L7 = bp == "http" || bp == "https"
	if d, _, ok := g.seconds(a, defaults.CLBIdleTimeoutAnnotation); ok {
		r.IdleTimeout = d
	}
	r.DelayKey = defaults.CLBDrainingTimeoutAnnotation
	v, o, line := a.get(defaults.CLBDrainingEnabledAnnotation)
	if o == nil {
		return
	}
	on, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		g.errorf(o, line, "annotation %s %q: want true or false", defaults.CLBDrainingEnabledAnnotation, v)
		return
	}
	r.DelayAt.Line = line
	if !on {
		return
	}
	r.DeregistrationDelay = defaults.CLBConnectionDrainingTimeout
	if d, tline, ok := g.seconds(a, r.DelayKey); ok {
		r.DeregistrationDelay, r.DelayAt.Line, r.DelaySet = d, tline, true
	}
}

// seconds reads annotation key as whole seconds, as the in-tree provider
// does (strconv.ParseInt: "75", never "75s"); false when it is unset or
// unusable (then an error names the line).
func (g *graph) seconds(a annotated, key string) (time.Duration, int, bool) {
	v, o, line := a.get(key)
	if o == nil {
		return 0, 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		g.errorf(o, line, "annotation %s %q: want whole seconds (the provider rejects anything else)", key, v)
		return 0, 0, false
	}
	return time.Duration(n) * time.Second, line, true
}

// attr reads one key of a "k1=v1,k2=v2" attribute annotation as seconds.
func (g *graph) attr(o *manifest.Object, line int, v, key string) (time.Duration, bool) {
	for _, kv := range strings.Split(v, ",") {
		k, val, found := strings.Cut(strings.TrimSpace(kv), "=")
		if !found || strings.TrimSpace(k) != key {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			g.errorf(o, line, "%s=%q: want whole seconds", key, val)
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// health resolves a health check from annotations named prefix+suffix, in
// the order interval, timeout, healthy, unhealthy, path, port, protocol, codes.
func (g *graph) health(a annotated, prefix string, hc HealthCheck, at *int, names ...string) HealthCheck {
	num := func(name string, dst *int) {
		if v, o, line := a.get(prefix + name); o != nil {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 {
				g.errorf(o, line, "annotation %s%s %q: want a positive integer", prefix, name, v)
				return
			}
			*dst, *at = n, line
		}
	}
	var interval, timeout = int(hc.Interval / time.Second), int(hc.Timeout / time.Second)
	num(names[0], &interval)
	num(names[1], &timeout)
	num(names[2], &hc.HealthyThreshold)
	num(names[3], &hc.UnhealthyThreshold)
	hc.Interval, hc.Timeout = time.Duration(interval)*time.Second, time.Duration(timeout)*time.Second
	for i, dst := range []*string{&hc.Path, &hc.Port, &hc.Protocol, &hc.SuccessCodes} {
		if names[4+i] == "" {
			continue // the provider reads no such annotation
		}
		if v, o, _ := a.get(prefix + names[4+i]); o != nil {
			*dst = v
		}
	}
	return hc
}
