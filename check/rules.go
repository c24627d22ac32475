package check

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/manifest"
)

// Rule is one link of the zero-downtime chain rollsafe checks.
type Rule struct {
	ID       string
	Severity Severity // the usual severity; a finding may be milder when facts are missing
	// Summary is one line: what breaks and when. docs/rules/<ID>.md has the reasoning.
	Summary string
	check   func(c *run, w *Workload)
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
		Summary: "preStop shorter than controller lag + propagation P: requests still arrive after SIGTERM"},
	{ID: "deregistration-delay-too-short", Severity: Error, check: delayTooShort,
		Summary: "deregistration delay below the longest request: the load balancer cuts in-flight requests"},
	{ID: "deregistration-delay-vs-prestop", Severity: Warning, check: delayVsPreStop,
		Summary: "preStop ends before the deregistration delay: the pod may exit while its target still drains"},
	{ID: "app-idle-timeout-too-short", Severity: Error, check: appIdleTooShort,
		Summary: "app keep-alive not longer than the load balancer's idle timeout: reused connections race to a 502"},
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
	Workloads       []*Workload      `json:"-"`
	Findings        []Finding        `json:"findings"`
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// Objects is how many objects were read, for the summary line.
	Objects int `json:"-"`
}

// Check resolves the objects and runs every rule on every workload.
func Check(objs []*manifest.Object, o Options) (*Result, error) {
	ws, err := Resolve(objs, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Workloads: ws, Objects: len(objs), Findings: []Finding{}}
	for _, w := range ws {
		res.Findings = append(res.Findings, Run(w, o)...)
	}
	return res, nil
}

// Run applies every rule to one workload.
func Run(w *Workload, o Options) []Finding {
	c := &run{opts: o, rec: Recommend(w, o)}
	for i := range Rules {
		c.rule = &Rules[i]
		Rules[i].check(c, w)
	}
	return c.out
}

// run carries one workload's rule evaluation.
type run struct {
	opts Options
	rec  Recommendation
	rule *Rule
	out  []Finding
}

func (c *run) report(w *Workload, sev Severity, obj *manifest.Object, line int, fix string, format string, a ...any) {
	if obj == nil {
		obj = w.Object
	}
	if line == 0 {
		line = obj.Source.Line
	}
	c.out = append(c.out, Finding{Rule: c.rule.ID, Severity: sev, Object: obj.Ref(c.opts.DefaultNamespace),
		Workload: w.Ref, Message: fmt.Sprintf(format, a...), Fix: fix, File: obj.Source.File, Line: line})
}

// secs formats a duration as seconds, the unit every setting here uses.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func n(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// graceText names the grace period and says when it is the default.
func graceText(w *Workload) string {
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

func preStopFix(container string, d time.Duration) string {
	return podSpecFix("containers:",
		"- name: "+container,
		"  lifecycle:",
		"    preStop:",
		"      sleep:",
		"        seconds: "+n(d))
}

func gateMissing(c *run, w *Workload) {
	if w.ManualGate || (w.GateKnown && w.GateInjection) {
		return
	}
	var ip *Route
	for i := range w.Routes {
		if r := &w.Routes[i]; r.TargetType == "ip" {
			ip = r
			break
		}
	}
	if ip == nil {
		return
	}
	fix := yamlFix("apiVersion: v1", "kind: Namespace", "metadata:", "  name: "+w.Namespace, "  labels:",
		"    "+LabelGateInject+": enabled")
	if !w.GateKnown {
		c.report(w, Warning, nil, w.Object.Source.Line, fix,
			"%s sends ip targets to %s (%s) but Namespace %s is not among the inputs, so its %s label cannot be confirmed; without it new pods turn Ready before their targets are healthy",
			ip.LB, w.Ref, ip.Via, w.Namespace, LabelGateInject)
		return
	}
	ns := w.NamespaceObject
	c.report(w, Error, ns, ns.Line("metadata", "labels"), fix,
		"%s sends ip targets to %s (%s) but Namespace %s lacks %s=enabled: new pods turn Ready before their targets are healthy, so a rollout can leave only initial/draining targets (fail-open → 502/504)",
		ip.LB, w.Ref, ip.Via, w.Namespace, LabelGateInject)
}

func gateUnsupported(c *run, w *Workload) {
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "instance" {
			continue
		}
		obj, line := r.at(r.typeObj, r.targetTypeAt)
		var fix string
		switch r.LB {
		case "ALB":
			fix = yamlFix("metadata:", "  annotations:", "    "+albPrefix+"target-type: ip")
		case "NLB":
			fix = yamlFix("metadata:", "  annotations:", "    "+svcPrefix+"aws-load-balancer-type: external",
				"    "+svcPrefix+"aws-load-balancer-nlb-target-type: ip")
		default:
			fix = yamlFix("# serve through the AWS Load Balancer Controller with ip targets, e.g.", "metadata:",
				"  annotations:", "    "+svcPrefix+"aws-load-balancer-type: external",
				"    "+svcPrefix+"aws-load-balancer-nlb-target-type: ip")
		}
		c.report(w, Warning, obj, line, fix,
			"%s (%s) uses instance targets: the load balancer sees nodes, not pods, so no readiness gate can hold the rollout until new pods are healthy behind it",
			r.LB, r.Via)
	}
}

func probeMissing(c *run, w *Workload) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if ct.Readiness != nil {
			continue
		}
		c.report(w, Error, nil, w.Object.Line(containerPath(ct.Index)...), podSpecFix("containers:",
			"- name: "+ct.Name, "  readinessProbe:", "    httpGet:", "      path: /ready", "      port: <serving port>",
			"    periodSeconds: 5"),
			"container %q of %s has no readinessProbe: it counts as Ready as soon as it starts and receives traffic before it can answer",
			ct.Name, w.Ref)
	}
}

func preStopMissing(c *run, w *Workload) {
	if !w.Served() {
		return
	}
	for _, ct := range w.Containers {
		if ct.PreStop.Kind != "" {
			continue
		}
		c.report(w, Error, nil, w.Object.Line(containerPath(ct.Index)...), preStopFix(ct.Name, c.rec.PreStop),
			"container %q of %s has no preStop hook: SIGTERM arrives at once while for up to %s (controller lag %s + propagation %s) the load balancer still sends new requests",
			ct.Name, w.Ref, secs(StopWindow(c.opts)), secs(c.opts.ControllerLag), secs(c.opts.Propagation))
	}
}

func preStopExceedsGrace(c *run, w *Workload) {
	for _, ct := range w.Containers {
		if !ct.PreStop.Known || ct.PreStop.Duration < w.TerminationGracePeriod {
			continue
		}
		grace := minGrace(w, c.opts, ct.PreStop.Duration)
		c.report(w, Error, nil, w.Object.Line(containerPath(ct.Index, "lifecycle", "preStop")...),
			podSpecFix("terminationGracePeriodSeconds: "+n(grace)),
			"container %q of %s: preStop (%s) takes %s but %s: the kubelet kills the container %s after the hook starts (+2s), mid-sleep, so SIGTERM is never handled gracefully",
			ct.Name, w.Ref, ct.PreStop.Command, secs(ct.PreStop.Duration), graceText(w), secs(w.TerminationGracePeriod))
	}
}

func preStopTooShort(c *run, w *Workload) {
	if !w.Served() {
		return
	}
	need := StopWindow(c.opts)
	for _, ct := range w.Containers {
		if !ct.PreStop.Known || ct.PreStop.Duration >= need {
			continue
		}
		c.report(w, Error, nil, w.Object.Line(containerPath(ct.Index, "lifecycle", "preStop")...),
			preStopFix(ct.Name, c.rec.PreStop),
			"container %q of %s: preStop waits %s, less than controller lag %s + propagation %s = %s: requests still arriving after SIGTERM can hit a process that is shutting down",
			ct.Name, w.Ref, secs(ct.PreStop.Duration), secs(c.opts.ControllerLag), secs(c.opts.Propagation), secs(need))
	}
}

func delayFix(r *Route, d time.Duration) string {
	key := r.delayKey
	val := attrDelay + "=" + n(d)
	if r.LB == "CLB" {
		val = n(d)
	}
	if key == "" {
		return "# set deregistration_delay.timeout_seconds=" + n(d) + " on the target group"
	}
	return yamlFix("metadata:", "  annotations:", "    "+key+": "+val)
}

func delayTooShort(c *run, w *Workload) {
	if !w.Served() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "ip" || r.DeregistrationDelay >= w.MaxRequestDuration {
			continue
		}
		obj, line := r.at(r.delayObj, r.delayAt)
		c.report(w, Error, obj, line, delayFix(r, c.rec.DeregistrationDelay),
			"%s (%s) deregistration delay is %s, below the longest request %s: when it elapses the load balancer closes connections still carrying a request (502)",
			r.LB, r.Via, secs(r.DeregistrationDelay), secs(w.MaxRequestDuration))
	}
}

func delayVsPreStop(c *run, w *Workload) {
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
			obj, line := r.at(r.delayObj, r.delayAt)
			fix := delayFix(r, c.rec.DeregistrationDelay)
			if c.rec.DeregistrationDelay > ct.PreStop.Duration {
				fix += "\n---\n" + preStopFix(ct.Name, c.rec.PreStop) + "\n      terminationGracePeriodSeconds: " +
					n(minGrace(w, c.opts, c.rec.PreStop))
			}
			c.report(w, Warning, obj, line, fix,
				"container %q of %s: preStop %s ends before the %s deregistration delay %s (%s): SIGTERM reaches the pod while its target is still draining; harmless if the app finishes in-flight requests on SIGTERM, 502s if it exits at once",
				ct.Name, w.Ref, secs(ct.PreStop.Duration), r.LB, secs(r.DeregistrationDelay), r.Via)
		}
	}
}

func appIdleTooShort(c *run, w *Workload) {
	if !w.Served() || w.AppIdleTimeout == 0 {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if !r.L7 || r.IdleTimeout == 0 || w.AppIdleTimeout > r.IdleTimeout {
			continue
		}
		c.report(w, Error, nil, w.Object.Line("metadata", "annotations", AnnotationAppIdleTimeout),
			yamlFix("# make the app's keep-alive (idle) timeout longer than the load balancer's, e.g. Go: http.Server{IdleTimeout: "+
				n(c.rec.MinAppIdleTimeout)+" * time.Second}", "metadata:", "  annotations:",
				"    "+AnnotationAppIdleTimeout+": \""+n(c.rec.MinAppIdleTimeout)+"\""),
			"%s keeps idle connections %s but the %s (%s) idle timeout is %s: the app closes connections the load balancer may still reuse, and a request sent on one fails with 502",
			w.Ref, secs(w.AppIdleTimeout), r.LB, r.Via, secs(r.IdleTimeout))
	}
}

func strategyUnsafe(c *run, w *Workload) {
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
	switch {
	case w.Strategy == "Recreate":
		c.report(w, Error, nil, line, fix,
			"%s uses strategy Recreate: every old pod is deleted before any new one starts, so each rollout is an outage", w.Ref)
	case w.Strategy == "OnDelete":
	case w.Kind == "Deployment" && w.MaxSurge == 0 && w.MaxUnavailable == 0:
		c.report(w, Error, nil, line, fix,
			"%s: maxSurge and maxUnavailable both resolve to 0 for %d replicas; the API server rejects it and the rollout cannot progress", w.Ref, w.Replicas)
	case w.Replicas-w.MaxUnavailable < 1:
		if w.Kind == "StatefulSet" {
			fix = yamlFix("spec:", "  replicas: 2", "  updateStrategy:", "    rollingUpdate:", "      maxUnavailable: 1")
		}
		c.report(w, Error, nil, line, fix,
			"%s: maxUnavailable resolves to %d of %d replicas, so the rollout may take every ready replica down at once",
			w.Ref, w.MaxUnavailable, w.Replicas)
	}
}

func singleReplica(c *run, w *Workload) {
	if !w.Served() || w.Replicas != 1 {
		return
	}
	c.report(w, Warning, nil, w.Object.Line("spec", "replicas"), yamlFix("spec:", "  replicas: 2"),
		"%s runs 1 replica: a node drain, eviction or a pod that never turns healthy leaves no target behind the load balancer", w.Ref)
}

func pdbMissing(c *run, w *Workload) {
	if !w.Served() || w.Replicas < 2 || len(w.PDBs) > 0 {
		return
	}
	var sel []string
	for k, v := range w.Template.Labels {
		sel = append(sel, "      "+k+": "+strconv.Quote(v))
	}
	sort.Strings(sel)
	fix := yamlFix(append([]string{"apiVersion: policy/v1", "kind: PodDisruptionBudget", "metadata:",
		"  name: " + w.Name, "  namespace: " + w.Namespace, "spec:", "  maxUnavailable: 1", "  selector:",
		"    matchLabels:"}, sel...)...)
	c.report(w, Warning, nil, w.Object.Line("spec", "template", "metadata", "labels"), fix,
		"no PodDisruptionBudget selects the pods of %s (%d replicas): a node drain may evict all of them at once, skipping preStop ordering across replicas",
		w.Ref, w.Replicas)
}

func shutdownExceedsGrace(c *run, w *Workload) {
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
		c.report(w, Error, nil, w.Object.Line("spec", "template", "spec", "terminationGracePeriodSeconds"),
			podSpecFix("terminationGracePeriodSeconds: "+n(minGrace(w, c.opts, ct.PreStop.Duration))),
			"container %q of %s: preStop %s + drain after SIGTERM %s (requests arriving until %s may run %s, then shutdown %s) = %s, not within %s: SIGKILL lands on in-flight requests",
			ct.Name, w.Ref, secs(ct.PreStop.Duration), secs(drain), secs(StopWindow(c.opts)), secs(w.MaxRequestDuration),
			secs(w.ShutdownTime), secs(ct.PreStop.Duration+drain), graceText(w))
	}
}

func healthcheckSlow(c *run, w *Workload) {
	if !w.Served() || !w.GateActive() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "ip" {
			continue
		}
		hc := r.HealthCheck
		step := time.Duration(hc.HealthyThreshold)*hc.Interval + GateRequeue
		if step <= SlowStep {
			continue
		}
		obj, line := r.at(nil, r.healthAt)
		c.report(w, Info, obj, line, yamlFix("metadata:", "  annotations:",
			"    "+albPrefix+"healthcheck-interval-seconds: \"10\"", "    "+albPrefix+"healthy-threshold-count: \"2\""),
			"%s (%s): health check interval %s × healthy threshold %d + gate re-check %s = %s per pod before the rollout moves on; %d replicas take at least %s",
			r.LB, r.Via, secs(hc.Interval), hc.HealthyThreshold, secs(GateRequeue), secs(step), w.Replicas,
			secs(time.Duration(w.Replicas)*step))
	}
}
