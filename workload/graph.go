package workload

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/internal/rollout"
	"github.com/rollsafe/rollsafe/manifest"
)

// graph indexes the objects once; rules never search the input.
type graph struct {
	opts       Options
	workloads  []*manifest.Object
	services   map[string][]*manifest.Object // by namespace
	ingresses  map[string][]*manifest.Object
	tgbs       map[string][]*manifest.Object
	pdbs       map[string][]*manifest.Object
	namespaces map[string]*manifest.Object
	classes    map[string]*networkingv1.IngressClass
	defaultALB bool // a default IngressClass is the ALB controller's
	// defaultNginx: a default IngressClass is ingress-nginx's;
	// nginxConfig its ConfigMap, when the input holds one.
	defaultNginx bool
	nginxConfig  *manifest.Object
	groups       map[string][]*manifest.Object        // IngressGroup name -> ALB Ingresses
	selectors    map[*manifest.Object]labels.Selector // Services' and PDBs' selectors, parsed once
	errs         []error
}

func (g *graph) ns(o *manifest.Object) string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return g.opts.DefaultNamespace
}

func newGraph(objs []*manifest.Object, opts Options) *graph {
	g := &graph{opts: opts, services: map[string][]*manifest.Object{}, ingresses: map[string][]*manifest.Object{},
		tgbs: map[string][]*manifest.Object{}, pdbs: map[string][]*manifest.Object{},
		namespaces: map[string]*manifest.Object{}, classes: map[string]*networkingv1.IngressClass{},
		groups: map[string][]*manifest.Object{}, selectors: map[*manifest.Object]labels.Selector{}}
	for _, o := range objs {
		switch obj := o.Obj.(type) {
		case *appsv1.Deployment, *appsv1.StatefulSet:
			g.workloads = append(g.workloads, o)
		case *corev1.Service:
			g.services[g.ns(o)] = append(g.services[g.ns(o)], o)
			if len(obj.Spec.Selector) > 0 {
				g.selectors[o] = labels.SelectorFromSet(obj.Spec.Selector)
			}
		case *networkingv1.Ingress:
			g.ingresses[g.ns(o)] = append(g.ingresses[g.ns(o)], o)
		case *manifest.TargetGroupBinding:
			g.tgbs[g.ns(o)] = append(g.tgbs[g.ns(o)], o)
		case *policyv1.PodDisruptionBudget:
			g.pdbs[g.ns(o)] = append(g.pdbs[g.ns(o)], o)
			sel, err := metav1.LabelSelectorAsSelector(obj.Spec.Selector)
			if err != nil {
				g.errorf(o, o.Line("spec", "selector"), "selector: %v", err)
			} else if obj.Spec.Selector != nil && !sel.Empty() {
				g.selectors[o] = sel
			}
		case *corev1.Namespace:
			g.namespaces[o.Name] = o
		case *networkingv1.IngressClass:
			g.classes[o.Name] = obj
			if obj.Annotations[defaults.DefaultClassAnnotation] == "true" {
				g.defaultALB = g.defaultALB || obj.Spec.Controller == defaults.ALBController
				g.defaultNginx = g.defaultNginx || obj.Spec.Controller == defaults.NginxController
			}
		case *corev1.ConfigMap:
			if g.nginxConfig == nil && isNginxConfigMap(o) {
				g.nginxConfig = o
			}
		}
	}
	for _, list := range g.ingresses {
		for _, o := range list {
			if g.isALB(o.Obj.(*networkingv1.Ingress)) {
				name := groupName(g, o)
				g.groups[name] = append(g.groups[name], o)
			}
		}
	}
	return g
}

// isALB says whether the AWS Load Balancer Controller serves the Ingress:
// by ingressClassName (its IngressClass's controller, or the conventional
// name "alb" when the class is not among the inputs), by the legacy class
// annotation, or by a default IngressClass of the controller.
func (g *graph) isALB(ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		if ic, ok := g.classes[*c]; ok {
			return ic.Spec.Controller == defaults.ALBController
		}
		return *c == defaults.ALBClassName
	}
	if c, ok := ing.Annotations[defaults.IngressClassAnnotation]; ok {
		return c == defaults.ALBClassName
	}
	return g.defaultALB
}

// groupName is the ALB IngressGroup: explicit group.name, else the
// Ingress alone (the controller's implicit group).
func groupName(g *graph, o *manifest.Object) string {
	ing := o.Obj.(*networkingv1.Ingress)
	if n := ing.Annotations[albPrefix+"group.name"]; n != "" {
		return n
	}
	return "implicit:" + g.ns(o) + "/" + o.Name
}

// Resolve joins the objects and resolves every Deployment and StatefulSet.
// Unusable values (an annotation that is not a number, a bad
// maxUnavailable) are returned as errors naming file:line, all of them
// joined; each workload they concern also holds its own in Err, so the
// others can still be judged.
func Resolve(objs []*manifest.Object, opts Options) ([]*Workload, error) {
	g := newGraph(objs, opts)
	ws := make([]*Workload, 0, len(g.workloads))
	for _, o := range g.workloads {
		before := len(g.errs)
		w := g.resolve(o)
		g.judgeServed(w)
		w.Err = errors.Join(g.errs[before:]...)
		ws = append(ws, w)
	}
	return ws, errors.Join(g.errs...)
}

func (g *graph) errorf(o *manifest.Object, line int, format string, a ...any) {
	if line == 0 {
		line = o.Source.Line
	}
	g.errs = append(g.errs, &manifest.Error{File: o.Source.File, Line: line, Doc: o.Source.Doc,
		Msg: o.Kind + " " + o.Name + ": " + fmt.Sprintf(format, a...)})
}

func (g *graph) resolve(o *manifest.Object) *Workload {
	w := &Workload{Object: o, Kind: o.Kind, Namespace: g.ns(o), Name: o.Name}
	w.Ref = o.Ref(g.opts.DefaultNamespace)
	var meta metav1.ObjectMeta
	switch d := o.Obj.(type) {
	case *appsv1.Deployment:
		meta = d.ObjectMeta
		w.setPods(&d.Spec.Template, d.Spec.Replicas, d.Spec.MinReadySeconds)
		g.deploymentStrategy(w, d)
	case *appsv1.StatefulSet:
		meta = d.ObjectMeta
		w.setPods(&d.Spec.Template, d.Spec.Replicas, d.Spec.MinReadySeconds)
		g.statefulSetStrategy(w, d)
	}
	spec := &w.Template.Spec
	w.TerminationGracePeriod, w.GraceDefaulted = defaults.TerminationGracePeriod, true
	if spec.TerminationGracePeriodSeconds != nil {
		w.TerminationGracePeriod = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		w.GraceDefaulted = false
	}
	for _, rg := range spec.ReadinessGates {
		c := string(rg.ConditionType)
		if strings.HasPrefix(c, defaults.GatePrefix) || strings.HasPrefix(c, defaults.LegacyGatePrefix) {
			w.ManualGate = true
		}
	}
	if nsObj, ok := g.namespaces[w.Namespace]; ok {
		w.NamespaceObject, w.GateKnown = nsObj, true
		w.GateInjection = nsObj.Obj.(*corev1.Namespace).Labels[defaults.GateInjectLabel] == "enabled"
	}
	g.appFacts(w, meta)

	podLabels := labels.Set(w.Template.Labels)
	for _, s := range g.services[w.Namespace] {
		sel, ok := g.selectors[s]
		if !ok || !sel.Matches(podLabels) {
			continue
		}
		svc := s.Obj.(*corev1.Service)
		w.Services = append(w.Services, s)
		g.routes(w, s, svc)
	}
	for _, p := range g.pdbs[w.Namespace] {
		if sel, ok := g.selectors[p]; ok && sel.Matches(podLabels) {
			w.PDBs = append(w.PDBs, p)
		}
	}
	w.Containers = servingContainers(w.Template, w.Services)
	return w
}

// setPods records the pod template, the replicas (1 when unset, the API
// server's default) and minReadySeconds.
func (w *Workload) setPods(t *corev1.PodTemplateSpec, replicas *int32, minReady int32) {
	w.Template, w.Replicas, w.MinReadySeconds = t, 1, int(minReady)
	if replicas != nil {
		w.Replicas = int(*replicas)
	}
}

// deploymentStrategy resolves a Deployment's strategy: maxSurge and
// maxUnavailable with the deployment controller's arithmetic.
func (g *graph) deploymentStrategy(w *Workload, d *appsv1.Deployment) {
	w.Strategy = string(d.Spec.Strategy.Type)
	if w.Strategy == "" {
		w.Strategy = string(appsv1.RollingUpdateDeploymentStrategyType)
	}
	if w.Strategy != string(appsv1.RollingUpdateDeploymentStrategyType) {
		return
	}
	var surge, unavail *intstr.IntOrString // nil: the API server's 25 %
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		surge, unavail = ru.MaxSurge, ru.MaxUnavailable
	}
	var err error
	w.MaxSurge, w.MaxUnavailable, err = rollout.Fenceposts(surge, unavail, w.Replicas)
	g.fieldErrors(w.Object, err)
	if rollout.BothZero(surge, unavail) {
		// The API server rejects it before any controller sees it;
		// the strategy rule says so.
		w.MaxSurge, w.MaxUnavailable = 0, 0
	}
}

// statefulSetStrategy resolves a StatefulSet's strategy. A StatefulSet
// replaces pods in place: delete first, no surge.
func (g *graph) statefulSetStrategy(w *Workload, d *appsv1.StatefulSet) {
	w.Strategy = string(d.Spec.UpdateStrategy.Type)
	if w.Strategy == "" {
		w.Strategy = string(appsv1.RollingUpdateStatefulSetStrategyType)
	}
	unavail := intstr.FromInt32(1)
	if ru := d.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		unavail = *ru.MaxUnavailable
	}
	var err error
	w.MaxUnavailable, err = rollout.Scale(rollout.FieldMaxUnavailable, &unavail, w.Replicas, false)
	g.fieldErrors(w.Object, err)
}

// fieldErrors reports each bad maxSurge/maxUnavailable (rollout.FieldError)
// at its line in the strategy.
func (g *graph) fieldErrors(o *manifest.Object, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var fe *rollout.FieldError
		if !errors.As(e, &fe) {
			g.errorf(o, 0, "%v", e)
			continue
		}
		path := []string{"spec", "strategy", "rollingUpdate", fe.Field}
		if o.Kind == "StatefulSet" {
			path = []string{"spec", "updateStrategy", "rollingUpdate", fe.Field}
		}
		g.errorf(o, o.Line(path...), "%v", fe)
	}
}

// appFacts reads the app's timeouts from the workload's or its pod
// template's rollsafe.dev annotations, falling back to the flags.
func (g *graph) appFacts(w *Workload, meta metav1.ObjectMeta) {
	w.AppIdleTimeout, w.MaxRequestDuration, w.ShutdownTime = g.opts.AppIdleTimeout, g.opts.MaxRequestDuration, g.opts.ShutdownTime
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{AnnotationAppIdleTimeout, &w.AppIdleTimeout}, {AnnotationMaxRequestDuration, &w.MaxRequestDuration},
		{AnnotationShutdownTime, &w.ShutdownTime}} {
		path := []string{"metadata", "annotations", f.key}
		v, ok := meta.Annotations[f.key]
		if !ok {
			v, ok = w.Template.Annotations[f.key]
			path = []string{"spec", "template", "metadata", "annotations", f.key}
		}
		if !ok {
			continue
		}
		d, err := graceful.ParseDuration(v)
		if err != nil {
			g.errorf(w.Object, w.Object.Line(path...), "annotation %s %q: %v", f.key, v, err)
			continue
		}
		*f.dst = d
	}
}

// servingContainers picks the containers that own a Service target port;
// all containers when none can be matched (no Service, or ports unnamed).
func servingContainers(t *corev1.PodTemplateSpec, svcs []*manifest.Object) []Container {
	serving := map[int]bool{}
	for _, s := range svcs {
		for _, p := range s.Obj.(*corev1.Service).Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			for i, c := range t.Spec.Containers {
				for _, cp := range c.Ports {
					if (tp.Type == intstr.Int && cp.ContainerPort == tp.IntVal) ||
						(tp.Type == intstr.String && cp.Name == tp.StrVal) {
						serving[i] = true
					}
				}
			}
		}
	}
	var out []Container
	for i, c := range t.Spec.Containers {
		if len(serving) > 0 && !serving[i] {
			continue
		}
		ct := Container{Name: c.Name, Index: i, Readiness: resolveProbe(c.ReadinessProbe)}
		if c.Lifecycle != nil {
			ct.PreStop = ParsePreStop(c.Lifecycle.PreStop)
		}
		out = append(out, ct)
	}
	return out
}

func resolveProbe(p *corev1.Probe) *Probe {
	if p == nil {
		return nil
	}
	r := &Probe{InitialDelay: probeSecs(p.InitialDelaySeconds, 0), Period: probeSecs(p.PeriodSeconds, defaults.ProbePeriod),
		Timeout: probeSecs(p.TimeoutSeconds, defaults.ProbeTimeout), SuccessThreshold: orDefault(p.SuccessThreshold, defaults.ProbeSuccessThreshold),
		FailureThreshold: orDefault(p.FailureThreshold, defaults.ProbeFailureThreshold)}
	switch {
	case p.HTTPGet != nil:
		r.Kind, r.Path, r.Port = "httpGet", p.HTTPGet.Path, p.HTTPGet.Port.String()
	case p.TCPSocket != nil:
		r.Kind, r.Port = "tcpSocket", p.TCPSocket.Port.String()
	case p.GRPC != nil:
		r.Kind, r.Port = "grpc", strconv.Itoa(int(p.GRPC.Port))
	case p.Exec != nil:
		r.Kind = "exec"
	}
	return r
}

// probeSecs is a probe's seconds field, def when unset.
func probeSecs(v int32, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return time.Duration(v) * time.Second
}

func orDefault(v, def int32) int {
	if v == 0 {
		return int(def)
	}
	return int(v)
}
