package check

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// SlowStep is the per-pod rollout step above which healthcheck-slow
// reports: one minute per pod makes a 10-replica rollout ten minutes.
const SlowStep = 60 * time.Second

// Rule is one link of the zero-downtime chain rollsafe checks.
type Rule struct {
	ID       string
	Severity Severity // the usual severity; a finding may be milder when facts are missing
	// Summary is one line: what breaks and when. docs/rules/<ID>.md has the reasoning.
	Summary string
	check   func(c *run, w *workload.Workload) // nil for the rules Check runs on objects
}

// Rules is the one list of rules, in the order findings are reported.
var Rules = []Rule{
	{ID: "readiness-gate-missing", Severity: Error, check: gateMissing,
		Summary: "ALB/NLB ip targets without a target-health readiness gate: a rollout can leave only initial or draining targets"},
	{ID: "readiness-gate-unsupported", Severity: Warning, check: gateUnsupported,
		Summary: "instance targets: readiness gates cannot tie pod readiness to target health"},
	{ID: "readiness-probe-missing", Severity: Error, check: probeMissing,
		Summary: "a serving container without a readiness probe is Ready (and registered) before it can answer"},
	{ID: "prestop-missing", Severity: Error, check: preStopMissing,
		Summary: "no preStop: SIGTERM arrives while the load balancer still sends new requests"},
	{ID: "prestop-exceeds-grace", Severity: Error, check: preStopExceedsGrace,
		Summary: "preStop at least as long as terminationGracePeriodSeconds: the container is killed mid-hook"},
	{ID: "prestop-too-short", Severity: Error, check: preStopTooShort,
		Summary: "preStop shorter than the stop window (controller lag + propagation P; on instance targets the endpoint update + kube-proxy sync, + the health check's detection with externalTrafficPolicy Local): requests still arrive after SIGTERM"},
	{ID: "nginx-prestop-too-short", Severity: Error, check: nginxPreStopTooShort,
		Summary: "pods only ingress-nginx reaches: preStop shorter than nginx's sync lag, so nginx still sends new requests after SIGTERM"},
	{ID: "deregistration-delay-too-short", Severity: Error, check: delayTooShort,
		Summary: "deregistration delay below propagation P + the longest request: the load balancer cuts in-flight requests"},
	{ID: "deregistration-delay-vs-prestop", Severity: Warning, check: delayVsPreStop,
		Summary: "preStop ends before the deregistration delay: the pod may exit while its target still drains"},
	{ID: "clb-connection-draining-off", Severity: Error, check: clbDrainingOff,
		Summary: "Classic ELB connection draining off (the in-tree default) or shorter than the longest request: requests in flight on a node that leaves the ELB are cut"},
	{ID: "nlb-connection-termination-off", Severity: Warning, check: nlbTerminationOff,
		Summary: "NLB ip targets with connection termination off (the default): connections still open when the pod exits are reset"},
	{ID: "kube-proxy-keepalive", Severity: Warning, check: kubeProxyKeepAlive,
		Summary: "instance targets: conntrack keeps established connections on the terminating pod; the app must close them while it drains or they reset"},
	{ID: "app-idle-timeout-too-short", Severity: Error, check: appIdleTooShort,
		Summary: "app keep-alive not longer than the load balancer's idle timeout: reused connections race to a 502"},
	{ID: "nginx-upstream-keepalive", Severity: Warning, check: nginxKeepalive,
		Summary: "app keep-alive not longer than ingress-nginx's upstream keep-alive timeout: now and then nginx reuses a connection as the app closes it, and a POST on it gets a 502"},
	{ID: "nginx-retries-hide-failures", Severity: Info, check: nginxRetriesHide,
		Summary: "ingress-nginx retries failed idempotent requests on another pod but not POSTs it sent: a GET-only probe can pass while POSTs fail"},
	{ID: "rollout-strategy-unsafe", Severity: Error, check: strategyUnsafe,
		Summary: "the rollout strategy can leave no ready replica"},
	{ID: "single-replica", Severity: Warning, check: singleReplica,
		Summary: "one replica: any disruption or slow rollout step is an outage"},
	{ID: "pdb-missing", Severity: Warning, check: pdbMissing,
		Summary: "no PodDisruptionBudget: a node drain may evict every replica at once"},
	{ID: "shutdown-exceeds-grace", Severity: Error, check: shutdownExceedsGrace,
		Summary: "preStop + drain + shutdown not within the grace period: SIGKILL lands on in-flight requests"},
	{ID: "healthcheck-slow", Severity: Info, check: healthcheckSlow,
		Summary: "health check interval × healthy threshold + gate re-check make each pod's rollout step long"},
	{ID: "unserved", Severity: Info, check: unserved,
		Summary: "Services are in the input but none selects the workload: the load-balancer rules were skipped"},
	// duplicate-key judges objects, not workloads: Check runs it (duplicates.go).
	{ID: "duplicate-key", Severity: Error,
		Summary: "a mapping key given twice in a manifest: the second silently replaces the first (seed 003 lost port 80)"},
}

// RuleByID finds a rule.
func RuleByID(id string) (Rule, bool) {
	for _, r := range Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Result is everything one check produced.
type Result struct {
	Workloads       []*workload.Workload `json:"-"`
	Findings        []Finding            `json:"findings"`
	Recommendations []Recommendation     `json:"recommendations,omitempty"`
	// Objects is how many objects were read, for the summary line.
	Objects int `json:"-"`
}

// Check resolves the objects and runs every rule on every workload that
// resolved cleanly. A workload with unusable values is left out of the
// Result, and its errors (file:line each) are returned beside the others'
// findings: one bad object never hides the rest.
func Check(objs []*manifest.Object, o workload.Options) (*Result, error) {
	ws, err := workload.Resolve(objs, o)
	res := &Result{Objects: len(objs), Findings: []Finding{}}
	reported := map[*manifest.Object]bool{}
	for _, w := range ws {
		if w.Err != nil {
			continue
		}
		res.Workloads = append(res.Workloads, w)
		res.Findings = append(res.Findings, Run(w, o)...)
		res.Findings = append(res.Findings, duplicateFindings(w.Ref, objectsOf(w), reported, o)...)
	}
	for _, obj := range objs {
		res.Findings = append(res.Findings, duplicateFindings(obj.Ref(o.DefaultNamespace), []*manifest.Object{obj}, reported, o)...)
	}
	return res, err
}

// Run applies every workload rule to one workload, with the options it
// is judged by (workload.Options.ForWorkload).
func Run(w *workload.Workload, o workload.Options) []Finding {
	o = judgedBy(o, w)
	c := &run{opts: o, win: workloadWindow(o, w), rec: Recommend(w, o)}
	c.grace = c.fixedGrace(w)
	for i := range Rules {
		if Rules[i].check == nil {
			continue
		}
		c.rule = &Rules[i]
		Rules[i].check(c, w)
	}
	return c.out
}

// run carries one workload's rule evaluation.
type run struct {
	opts workload.Options
	win  window // the stop window o.StopWindow() is: what it is made of
	rec  Recommendation
	// grace is the grace period every fix that touches it writes: the
	// one the preStops left by all fixes of this run need, so that fixes
	// compose (0: no fix needs one).
	grace time.Duration
	rule  *Rule
	out   []Finding
}

func (c *run) report(w *workload.Workload, sev Severity, obj *manifest.Object, line int, fix string, patches []Patch, format string, a ...any) {
	if obj == nil {
		obj = w.Object
	}
	if line == 0 {
		line = obj.Source.Line
	}
	c.out = append(c.out, Finding{Rule: c.rule.ID, Severity: sev, Object: obj.Ref(c.opts.DefaultNamespace),
		Workload: w.Ref, Message: fmt.Sprintf(format, a...) + assumedNote(w), Fix: fix, Patches: patches,
		File: obj.Source.File, Line: line})
}

// fixedPreStop is the preStop container ct has once every fix of this run
// is applied; false when its length cannot be known.
func (c *run) fixedPreStop(w *workload.Workload, ct workload.Container) (time.Duration, bool) {
	p := ct.PreStop
	switch {
	case p.Kind == "" && w.Served() && !c.drainCovers(w, 0):
		return c.rec.PreStop, true // prestop-missing
	case p.Kind == "":
		return 0, true
	case !p.Known:
		return 0, false
	case w.Served() && !c.drainCovers(w, p.Duration):
		return c.rec.PreStop, true // prestop-too-short
	case w.Served() && c.rec.DeregistrationDelay > p.Duration:
		for _, r := range w.Routes {
			if r.TargetType == "ip" && p.Duration < r.DeregistrationDelay {
				return c.rec.PreStop, true // deregistration-delay-vs-prestop
			}
		}
	}
	return p.Duration, true
}

// fixedGrace is the grace period the fixed preStops need, when it is more
// than the workload has.
//
// With kube-proxy-keepalive's drain (fixedDrain) the app takes longer after
// SIGTERM, and every fix's grace period makes room for it.
//
// The preStop fixes are the ones the workload as written gets (the rules
// judge it before any fix), so the drain is added only when sizing.
func (c *run) fixedGrace(w *workload.Workload) time.Duration {
	drained := *w
	if d := fixedDrain(w); d > 0 {
		drained.DrainDelay = d
	}
	var g time.Duration
	for _, ct := range w.Containers {
		if d, ok := c.fixedPreStop(w, ct); ok {
			g = max(g, minGrace(&drained, c.opts, d))
		}
	}
	if g <= w.TerminationGracePeriod {
		return 0
	}
	return g
}

// secs formats a duration as seconds, the unit every setting here uses.
// It rounds to the millisecond: ingress-nginx's sync lag is 10/3 s + 1 s.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', -1, 64) + "s"
}

func n(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// num is a duration as the whole seconds a manifest writes.
func num(d time.Duration) int64 { return int64(ceilSec(d) / time.Second) }

// graceText names the grace period and says when it is the default.
func graceText(w *workload.Workload) string {
	if w.GraceDefaulted {
		return "terminationGracePeriodSeconds is unset (default 30s)"
	}
	return "terminationGracePeriodSeconds is " + secs(w.TerminationGracePeriod)
}

// yamlFix indents a snippet path: each element one level deeper, the last
// line holding the value(s).
func yamlFix(lines ...string) string { return strings.Join(lines, "\n") }

func podSpecFix(lines ...string) string {
	out := []string{"spec:", "  template:", "    spec:"}
	for _, l := range lines {
		out = append(out, "      "+l)
	}
	return yamlFix(out...)
}

// podPatch patches the workload's pod template: the given containers
// (merged by name) and, when grace > 0, the grace period.
func podPatch(w *workload.Workload, grace time.Duration, containers ...map[string]any) Patch {
	spec := map[string]any{}
	if len(containers) > 0 {
		cs := make([]any, len(containers))
		for i, c := range containers {
			cs[i] = c
		}
		spec["containers"] = cs
	}
	if grace > 0 {
		spec["terminationGracePeriodSeconds"] = num(grace)
	}
	return Patch{Object: w.Ref, Type: PatchStrategic, Patch: map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}}}
}

// annotationPatch sets annotations on obj.
func annotationPatch(obj *manifest.Object, ns string, kv ...string) Patch {
	ann := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		ann[kv[i]] = kv[i+1]
	}
	return Patch{Object: obj.Ref(ns), Type: PatchStrategic, Patch: map[string]any{"metadata": map[string]any{"annotations": ann}}}
}

// preStopFix sets a native preStop sleep of d and, when grace > 0, the
// grace period that sleep needs: pasting it alone never trades
// prestop-missing for prestop-exceeds-grace.
func preStopFix(w *workload.Workload, container string, d, grace time.Duration) (string, Patch) {
	lines := []string{"containers:",
		"- name: " + container,
		"  lifecycle:",
		"    preStop:",
		"      sleep:",
		"        seconds: " + strconv.FormatInt(num(d), 10)}
	if grace > 0 {
		lines = append(lines, "terminationGracePeriodSeconds: "+strconv.FormatInt(num(grace), 10))
	}
	return podSpecFix(lines...), podPatch(w, grace, map[string]any{"name": container,
		"lifecycle": map[string]any{"preStop": map[string]any{"sleep": map[string]any{"seconds": num(d)}}}})
}

// graceFix sets the grace period.
func graceFix(w *workload.Workload, grace time.Duration) (string, []Patch) {
	return podSpecFix("terminationGracePeriodSeconds: " + strconv.FormatInt(num(grace), 10)), []Patch{podPatch(w, grace)}
}

// gateNamespaceFix labels the workload's Namespace for readiness-gate
// injection: a patch when the Namespace is in the input, else the object.
func gateNamespaceFix(w *workload.Workload) (string, Patch) {
	fix := yamlFix("apiVersion: v1", "kind: Namespace", "metadata:", "  name: "+w.Namespace, "  labels:",
		"    "+defaults.GateInjectLabel+": enabled")
	labels := map[string]any{defaults.GateInjectLabel: "enabled"}
	if w.NamespaceObject != nil {
		return fix, Patch{Object: "Namespace/" + w.Namespace, Type: PatchStrategic, Patch: map[string]any{"metadata": map[string]any{"labels": labels}}}
	}
	return fix, Patch{Object: "Namespace/" + w.Namespace, Type: PatchCreate, Patch: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": w.Namespace, "labels": labels}}}
}

func gateMissing(c *run, w *workload.Workload) {
	if w.ManualGate || (w.GateKnown && w.GateInjection) {
		return
	}
	var ip *workload.Route
	for i := range w.Routes {
		if r := &w.Routes[i]; r.TargetType == "ip" {
			ip = r
			break
		}
	}
	if ip == nil {
		return
	}
	fix, patch := gateNamespaceFix(w)
	if !w.GateKnown {
		c.report(w, Warning, nil, w.Object.Source.Line, fix, []Patch{patch},
			"%s sends ip targets to %s (%s) but Namespace %s is not among the inputs, so its %s label cannot be confirmed; without it new pods turn Ready before their targets are healthy",
			ip.LB, w.Ref, ip.Via, w.Namespace, defaults.GateInjectLabel)
		return
	}
	ns := w.NamespaceObject
	c.report(w, Error, ns, ns.Line("metadata", "labels"), fix, []Patch{patch},
		"%s sends ip targets to %s (%s) but Namespace %s lacks %s=enabled: new pods turn Ready before their targets are healthy, so a rollout can leave only initial/draining targets (fail-open → 502/504)",
		ip.LB, w.Ref, ip.Via, w.Namespace, defaults.GateInjectLabel)
}

func gateUnsupported(c *run, w *workload.Workload) {
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "instance" {
			continue
		}
		obj, line := r.Locate(r.TargetTypeAt)
		if r.LB != "ALB" {
			// A Service's switch to ip targets makes a new load balancer
			// (CLB, in-tree NLB) or target group, and NLB ip targets bring
			// the NLB's minutes of P: a plan, not a patch to paste.
			c.report(w, Warning, obj, line, yamlFix("# no patch: switching to ip targets replaces the load balancer or its target group; plan it, e.g.",
				"metadata:", "  annotations:", "    "+defaults.LBTypeAnnotation+": external",
				"    "+defaults.ServiceAnnotationPrefix+"aws-load-balancer-nlb-target-type: ip"), nil,
				"%s (%s) uses instance targets: the load balancer sees nodes, not pods, so no readiness gate can hold the rollout until new pods are healthy behind it",
				r.LB, r.Via)
			continue
		}
		kv := []string{defaults.ALBAnnotationPrefix + "target-type", "ip"}
		fix := yamlFix("metadata:", "  annotations:", "    "+defaults.ALBAnnotationPrefix+"target-type: ip")
		patches := []Patch{annotationPatch(obj, c.opts.DefaultNamespace, kv...)}
		if w.Served() && r.DeregistrationDelay < c.opts.Propagation+w.MaxRequestDuration {
			// ip targets bring deregistration-delay-too-short into play.
			dobj, _ := r.Locate(r.DelayAt)
			dfix, dpatches := c.delayFix(r, dobj, c.rec.DeregistrationDelay)
			fix += "\n---\n" + dfix
			patches = append(patches, dpatches...)
		}
		if !w.GateActive() {
			// ip targets need the gate, or the next run reports readiness-gate-missing.
			nsFix, nsPatch := gateNamespaceFix(w)
			fix += "\n---\n" + nsFix
			patches = append(patches, nsPatch)
		}
		c.report(w, Warning, obj, line, fix, patches,
			"%s (%s) uses instance targets: the load balancer sees nodes, not pods, so no readiness gate can hold the rollout until new pods are healthy behind it",
			r.LB, r.Via)
	}
}

// servingPort is the first port container ct declares, by name when it has one.
func servingPort(w *workload.Workload, ct workload.Container) (any, string) {
	for _, p := range w.Template.Spec.Containers[ct.Index].Ports {
		if p.Name != "" {
			return p.Name, p.Name
		}
		if p.ContainerPort > 0 {
			return int64(p.ContainerPort), strconv.Itoa(int(p.ContainerPort))
		}
	}
	return nil, "<serving port>"
}

func probeMissing(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if ct.Readiness != nil {
			continue
		}
		port, portText := servingPort(w, ct)
		var patches []Patch
		if port != nil {
			patches = []Patch{podPatch(w, 0, map[string]any{"name": ct.Name, "readinessProbe": map[string]any{
				"httpGet": map[string]any{"path": "/ready", "port": port}, "periodSeconds": 5}})}
		}
		c.report(w, Error, nil, w.Object.Line(workload.ContainerPath(ct.Index)...), podSpecFix("containers:",
			"- name: "+ct.Name, "  readinessProbe:", "    httpGet:", "      path: /ready", "      port: "+portText,
			"    periodSeconds: 5"), patches,
			"container %q of %s has no readinessProbe: it counts as Ready as soon as it starts and receives traffic before it can answer",
			ct.Name, w.Ref)
	}
}

func preStopMissing(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if ct.PreStop.Kind != "" || c.drainCovers(w, 0) {
			continue
		}
		drains := ""
		if w.DrainDelay > 0 {
			drains = "; the app drains only " + c.drainText(w) + " after it"
		}
		fix, patch := preStopFix(w, ct.Name, c.rec.PreStop, c.grace)
		c.report(w, Error, nil, w.Object.Line(workload.ContainerPath(ct.Index)...), fix, []Patch{patch},
			"container %q of %s has no preStop hook: SIGTERM arrives at once while for up to %s (%s) %s%s",
			ct.Name, w.Ref, secs(c.opts.StopWindow()), windowText(c), c.win.sends, drains)
	}
}

func preStopExceedsGrace(c *run, w *workload.Workload) {
	for _, ct := range w.Containers {
		if !ct.PreStop.Known || ct.PreStop.Duration < w.TerminationGracePeriod {
			continue
		}
		fix, patches := graceFix(w, max(c.grace, minGrace(w, c.opts, ct.PreStop.Duration)))
		c.report(w, Error, nil, w.Object.Line(workload.ContainerPath(ct.Index, "lifecycle", "preStop")...), fix, patches,
			"container %q of %s: preStop (%s) takes %s but %s: the kubelet kills the container %s after the hook starts (+2s), mid-sleep, so SIGTERM is never handled gracefully",
			ct.Name, w.Ref, ct.PreStop.Command, secs(ct.PreStop.Duration), graceText(w), secs(w.TerminationGracePeriod))
	}
}

func preStopTooShort(c *run, w *workload.Workload) {
	if nginxOnly(w) { // nginx-prestop-too-short judges those
		return
	}
	c.shortPreStops(w, fmt.Sprintf("less than %s = %s: requests still arriving after SIGTERM can hit a process that is shutting down",
		windowText(c), secs(c.opts.StopWindow())))
}

// shortPreStops reports each served container whose preStop is shorter
// than the stop window, saying why it must not be.
func (c *run) shortPreStops(w *workload.Workload, why string) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if !ct.PreStop.Known || c.drainCovers(w, ct.PreStop.Duration) {
			continue
		}
		waits := secs(ct.PreStop.Duration) + ","
		if w.DrainDelay > 0 {
			waits = secs(ct.PreStop.Duration) + " and the app drains " + c.drainText(w) + " after SIGTERM, together"
		}
		fix, patch := preStopFix(w, ct.Name, c.rec.PreStop, c.grace)
		c.report(w, Error, nil, w.Object.Line(workload.ContainerPath(ct.Index, "lifecycle", "preStop")...), fix, []Patch{patch},
			"container %q of %s: preStop waits %s %s", ct.Name, w.Ref, waits, why)
	}
}

// drainCovers says whether a preStop of preStop and then the app's drain
// (Workload.DrainDelay: it keeps serving after SIGTERM) outlast the stop
// window: the pod takes every request that can still reach it. A drain
// does what a preStop sleep does, so either may cover the window (the
// lab's drain-past-idle-timeout has no preStop and loses nothing), but
// with Local only while the pod stays ready (drainCredit).
func (c *run) drainCovers(w *workload.Workload, preStop time.Duration) bool {
	return preStop+c.drainCredit(w) >= c.opts.StopWindow()
}

// drainText is the app's drain for messages, with the part that counts
// when drainCredit caps it.
func (c *run) drainText(w *workload.Workload) string {
	if credit := c.drainCredit(w); credit < w.DrainDelay {
		return secs(w.DrainDelay) + " (of which " + secs(credit) +
			" counts: with externalTrafficPolicy Local the node drops new connections once the pod is not ready, and an app that fails readiness at SIGTERM, as rollsafe/graceful does, can be marked not ready failureThreshold - 1 readiness periods later)"
	}
	return secs(w.DrainDelay)
}

// setAttr sets key=val in a "k1=v1,k2=v2" attribute list, keeping the others.
func setAttr(list, key, val string) string {
	var out []string
	found := false
	for _, kv := range strings.Split(list, ",") {
		k, _, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case strings.TrimSpace(kv) == "":
			continue
		case strings.TrimSpace(k) == key:
			if !found {
				out = append(out, key+"="+val)
			}
			found = true
		default:
			out = append(out, strings.TrimSpace(kv))
		}
	}
	if !found {
		out = append(out, key+"="+val)
	}
	return strings.Join(out, ",")
}

// delayFix sets the deregistration delay of route r on obj, the object
// holding it (the route's front when unset).
func (c *run) delayFix(r *workload.Route, obj *manifest.Object, d time.Duration) (string, []Patch) {
	key := r.DelayKey
	if key == "" {
		return "# set " + defaults.AttrDeregistrationDelay + "=" + n(d) + " on the target group", nil
	}
	val := n(d)
	if r.LB != "CLB" {
		val = setAttr(workload.AnnotationsOf(obj)[key], defaults.AttrDeregistrationDelay, n(d))
	}
	return yamlFix("metadata:", "  annotations:", "    "+key+": "+val), []Patch{annotationPatch(obj, c.opts.DefaultNamespace, key, val)}
}

func delayTooShort(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	need := c.opts.Propagation + w.MaxRequestDuration
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "ip" || r.DeregistrationDelay >= need {
			continue
		}
		obj, line := r.Locate(r.DelayAt)
		fix, patches := c.delayFix(r, obj, c.rec.DeregistrationDelay)
		c.report(w, Error, obj, line, fix, patches,
			"%s (%s) deregistration delay is %s, below propagation %s + the longest request %s = %s: a request load balancer nodes still send up to P after deregistration may run that long, and when the delay elapses the load balancer closes connections still carrying a request (502)",
			r.LB, r.Via, secs(r.DeregistrationDelay), secs(c.opts.Propagation), secs(w.MaxRequestDuration), secs(need))
	}
}

func delayVsPreStop(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "ip" {
			continue
		}
		for _, ct := range w.Containers {
			if !ct.PreStop.Known || ct.PreStop.Duration >= r.DeregistrationDelay {
				continue
			}
			obj, line := r.Locate(r.DelayAt)
			fix, patches := c.delayFix(r, obj, c.rec.DeregistrationDelay)
			if c.rec.DeregistrationDelay > ct.PreStop.Duration {
				pfix, patch := preStopFix(w, ct.Name, c.rec.PreStop, c.grace)
				fix += "\n---\n" + pfix
				patches = append(patches, patch)
			}
			c.report(w, Warning, obj, line, fix, patches,
				"container %q of %s: preStop %s ends before the %s deregistration delay %s (%s): SIGTERM reaches the pod while its target is still draining; harmless if the app finishes in-flight requests on SIGTERM, 502s if it exits at once",
				ct.Name, w.Ref, secs(ct.PreStop.Duration), r.LB, secs(r.DeregistrationDelay), r.Via)
		}
	}
}

func appIdleTooShort(c *run, w *workload.Workload) {
	if !w.Served() || w.AppIdleTimeout == 0 {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if !r.L7 || r.IdleTimeout == 0 || w.AppIdleTimeout > r.IdleTimeout {
			continue
		}
		v := n(c.rec.MinAppIdleTimeout)
		c.report(w, Error, nil, w.Object.Line("metadata", "annotations", workload.AnnotationAppIdleTimeout),
			yamlFix("# make the app's keep-alive (idle) timeout longer than the load balancer's, e.g. Go: http.Server{IdleTimeout: "+
				v+" * time.Second}", "metadata:", "  annotations:",
				"    "+workload.AnnotationAppIdleTimeout+": \""+v+"\""),
			// The patch records the new keep-alive; the app's own setting is a code change.
			[]Patch{annotationPatch(w.Object, c.opts.DefaultNamespace, workload.AnnotationAppIdleTimeout, v)},
			"%s keeps idle connections %s but the %s (%s) idle timeout is %s: the app closes connections the load balancer may still reuse, and a request sent on one fails with 502",
			w.Ref, secs(w.AppIdleTimeout), r.LB, r.Via, secs(r.IdleTimeout))
	}
}

func strategyUnsafe(c *run, w *workload.Workload) {
	if w.Replicas == 0 {
		return
	}
	path := []string{"spec", "strategy"}
	if w.Kind == "StatefulSet" {
		path = []string{"spec", "updateStrategy"}
	}
	line := w.Object.Line(path...)
	fix := yamlFix("spec:", "  strategy:", "    type: RollingUpdate", "    rollingUpdate:", "      maxSurge: 1",
		"      maxUnavailable: 0")
	patch := Patch{Object: w.Ref, Type: PatchStrategic, Patch: map[string]any{"spec": map[string]any{"strategy": map[string]any{
		"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": 1, "maxUnavailable": 0}}}}}
	switch {
	case w.Strategy == "Recreate":
		c.report(w, Error, nil, line, fix, []Patch{patch},
			"%s uses strategy Recreate: every old pod is deleted before any new one starts, so each rollout is an outage", w.Ref)
	case w.Strategy == "OnDelete":
	case w.Kind == "Deployment" && w.MaxSurge == 0 && w.MaxUnavailable == 0:
		c.report(w, Error, nil, line, fix, []Patch{patch},
			"%s: maxSurge and maxUnavailable both resolve to 0 for %d replicas; the API server rejects it and the rollout cannot progress", w.Ref, w.Replicas)
	case w.Replicas-w.MaxUnavailable < 1:
		if w.Kind == "StatefulSet" {
			replicas := max(w.Replicas, 2)
			fix = yamlFix("spec:", "  replicas: "+strconv.Itoa(replicas), "  updateStrategy:", "    rollingUpdate:", "      maxUnavailable: 1")
			patch.Patch = map[string]any{"spec": map[string]any{"replicas": replicas,
				"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": 1}}}}
		}
		c.report(w, Error, nil, line, fix, []Patch{patch},
			"%s: maxUnavailable resolves to %d of %d replicas, so the rollout may take every ready replica down at once",
			w.Ref, w.MaxUnavailable, w.Replicas)
	}
}

func singleReplica(c *run, w *workload.Workload) {
	if !w.Served() || w.Replicas != 1 {
		return
	}
	c.report(w, Warning, nil, w.Object.Line("spec", "replicas"), yamlFix("spec:", "  replicas: 2"),
		[]Patch{{Object: w.Ref, Type: PatchStrategic, Patch: map[string]any{"spec": map[string]any{"replicas": 2}}}},
		"%s runs 1 replica: a node drain, eviction or a pod that never turns healthy leaves no target behind the load balancer", w.Ref)
}

func pdbMissing(c *run, w *workload.Workload) {
	if !w.Served() || w.Replicas < 2 || len(w.PDBs) > 0 {
		return
	}
	var sel []string
	match := map[string]any{}
	for k, v := range w.Template.Labels {
		sel = append(sel, "      "+k+": "+strconv.Quote(v))
		match[k] = v
	}
	sort.Strings(sel)
	fix := yamlFix(append([]string{"apiVersion: policy/v1", "kind: PodDisruptionBudget", "metadata:",
		"  name: " + w.Name, "  namespace: " + w.Namespace, "spec:", "  maxUnavailable: 1", "  selector:",
		"    matchLabels:"}, sel...)...)
	patch := Patch{Object: "PodDisruptionBudget/" + w.Namespace + "/" + w.Name, Type: PatchCreate, Patch: map[string]any{
		"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
		"metadata": map[string]any{"name": w.Name, "namespace": w.Namespace},
		"spec":     map[string]any{"maxUnavailable": 1, "selector": map[string]any{"matchLabels": match}}}}
	c.report(w, Warning, nil, w.Object.Line("spec", "template", "metadata", "labels"), fix, []Patch{patch},
		"no PodDisruptionBudget selects the pods of %s (%d replicas): a node drain may evict all of them at once, skipping preStop ordering across replicas",
		w.Ref, w.Replicas)
}

func shutdownExceedsGrace(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if !ct.PreStop.Known || ct.PreStop.Duration >= w.TerminationGracePeriod {
			continue // unknown, or prestop-exceeds-grace already says it
		}
		drain := w.DrainAfterTERM(c.opts, ct.PreStop.Duration)
		if ct.PreStop.Duration+drain < w.TerminationGracePeriod {
			continue
		}
		fix, patches := graceFix(w, max(c.grace, minGrace(w, c.opts, ct.PreStop.Duration)))
		c.report(w, Error, nil, w.Object.Line("spec", "template", "spec", "terminationGracePeriodSeconds"), fix, patches,
			"container %q of %s: preStop %s + drain after SIGTERM %s (requests arriving until %s may run %s, then shutdown %s) = %s, not within %s: SIGKILL lands on in-flight requests",
			ct.Name, w.Ref, secs(ct.PreStop.Duration), secs(drain), secs(c.opts.StopWindow()), secs(w.MaxRequestDuration),
			secs(w.ShutdownTime), secs(ct.PreStop.Duration+drain), graceText(w))
	}
}

func healthcheckSlow(c *run, w *workload.Workload) {
	if !w.Served() || !w.GateActive() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "ip" {
			continue
		}
		hc := r.HealthCheck
		step := time.Duration(hc.HealthyThreshold)*hc.Interval + defaults.GateRequeue
		if step <= SlowStep {
			continue
		}
		obj, line := r.Locate(r.HealthAt)
		var patches []Patch
		if r.LB == "ALB" {
			patches = []Patch{annotationPatch(obj, c.opts.DefaultNamespace, defaults.ALBAnnotationPrefix+"healthcheck-interval-seconds", "10",
				defaults.ALBAnnotationPrefix+"healthy-threshold-count", "2")}
		}
		c.report(w, Info, obj, line, yamlFix("metadata:", "  annotations:",
			"    "+defaults.ALBAnnotationPrefix+"healthcheck-interval-seconds: \"10\"", "    "+defaults.ALBAnnotationPrefix+"healthy-threshold-count: \"2\""), patches,
			"%s (%s): health check interval %s × healthy threshold %d + gate re-check %s = %s per pod before the rollout moves on; %d replicas take at least %s",
			r.LB, r.Via, secs(hc.Interval), hc.HealthyThreshold, secs(defaults.GateRequeue), secs(step), w.Replicas,
			secs(time.Duration(w.Replicas)*step))
	}
}
