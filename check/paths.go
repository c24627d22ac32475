package check

import (
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/graceful"
	"github.com/rollsafe/rollsafe/workload"
)

// clbDrainingFix turns a Classic ELB's connection draining on with the
// recommended timeout: the Service annotations the in-tree provider reads
// (a Classic ELB has no target group attributes).
func (c *run) clbDrainingFix(r *workload.Route) (string, []Patch) {
	v := strconv.FormatInt(num(c.rec.DeregistrationDelay), 10)
	return yamlFix("metadata:", "  annotations:",
			"    "+defaults.CLBDrainingEnabledAnnotation+": \"true\"",
			"    "+defaults.CLBDrainingTimeoutAnnotation+": \""+v+"\""),
		[]Patch{annotationPatch(r.Front, c.opts.DefaultNamespace, defaults.CLBDrainingEnabledAnnotation, "true",
			defaults.CLBDrainingTimeoutAnnotation, v)}
}

// clbDrainingOff: a Classic ELB cuts the requests in flight to an
// instance that deregisters or turns unhealthy unless draining is on and
// outlasts them. Its instances are nodes: one leaves when its Node is
// deleted or excluded from load balancers (scale-in, replacement; a
// drain's cordon does not, and since KEP-3458 NotReady and the
// autoscaler's taint do not by themselves), and with
// externalTrafficPolicy Local a node fails the health check once its last
// ready pod of the Service is gone.
func clbDrainingOff(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.LB != "CLB" || (r.DeregistrationDelay > 0 && r.DeregistrationDelay >= w.MaxRequestDuration) {
			continue
		}
		obj, line := r.Locate(r.DelayAt)
		fix, patches := c.clbDrainingFix(r)
		if r.DeregistrationDelay == 0 {
			state := "is unset (the in-tree provider's default: off)"
			if _, set := workload.AnnotationsOf(r.Front)[defaults.CLBDrainingEnabledAnnotation]; set {
				state = "is false"
			}
			c.report(w, Error, obj, line, fix, patches,
				"%s (%s): connection draining is off (%s %s): when a node leaves the ELB (its Node deleted or excluded from load balancers: scale-in, replacement; with externalTrafficPolicy Local, each node whose last ready pod goes) the ELB closes its connections at once, cutting requests in flight (longest %s)",
				r.LB, r.Via, defaults.CLBDrainingEnabledAnnotation, state, secs(w.MaxRequestDuration))
			continue
		}
		timeout := secs(r.DeregistrationDelay)
		if !r.DelaySet {
			timeout += " (" + defaults.CLBDrainingTimeoutAnnotation + " unset: AWS's default when draining is on, unverified for the provider)"
		}
		c.report(w, Error, obj, line, fix, patches,
			"%s (%s): connection draining timeout %s is shorter than the longest request %s: when a node leaves the ELB, requests still running at the timeout are cut",
			r.LB, r.Via, timeout, secs(w.MaxRequestDuration))
	}
}

// terminationOn says whether route r's target group attributes enable
// NLB connection termination (defaults.NLBConnectionTermination when unset).
func terminationOn(r *workload.Route) bool {
	for _, kv := range strings.Split(workload.AnnotationsOf(r.Front)[r.DelayKey], ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && strings.TrimSpace(k) == defaults.AttrConnectionTermination {
			on, err := strconv.ParseBool(strings.TrimSpace(v))
			return err == nil && on
		}
	}
	return defaults.NLBConnectionTermination
}

// nlbTerminationOff: an NLB forwards TCP connections, not requests, and
// with connection termination off it does not close a deregistered
// target's connections when the delay ends. A client's keep-alive
// connection then stays on the pod until the pod closes it or exits.
func nlbTerminationOff(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.LB != "NLB" || !r.Controller || r.TargetType != "ip" || terminationOn(r) {
			continue
		}
		obj, line := r.Locate(r.DelayAt)
		d := n(c.rec.DeregistrationDelay)
		val := setAttr(setAttr(workload.AnnotationsOf(obj)[r.DelayKey], defaults.AttrDeregistrationDelay, d),
			defaults.AttrConnectionTermination, "true")
		fix := yamlFix("# and make the app close keep-alive connections while it drains (Connection: close)",
			"metadata:", "  annotations:", "    "+r.DelayKey+": "+val)
		patches := []Patch{annotationPatch(obj, c.opts.DefaultNamespace, r.DelayKey, val)}
		c.report(w, Warning, obj, line, fix, patches,
			"%s (%s) ip targets: %s is off (the default), so at the end of the deregistration delay (%s) the NLB does not close the pod's connections; new ones still arrive for P %s after deregistration, and a client's keep-alive connection (idle for up to %s, the NLB's TCP idle timeout) stays on the pod until the app closes it or the pod exits, which resets it (at the latest when the grace period ends: %s)",
			r.LB, r.Via, defaults.AttrConnectionTermination, secs(r.DeregistrationDelay), secs(c.opts.Propagation),
			secs(defaults.NLBTCPIdleTimeout), graceText(w))
	}
}

// drainMargin is how far past the pinned window the drain check's fix
// writes runs, so the load balancer's own close of an idle pinned
// connection falls inside the drain, not at its edge (the lab's
// drain-past-idle-timeout scenario drains 65 s past a 60 s idle timeout).
// The lab's choice, not a sourced figure.
const drainMargin = 5 * time.Second

// pinnedWindow is how long a connection pinned to the pod can sit idle
// and still be open: an HTTP load balancer (ALB, HTTP Classic ELB) and a
// Classic ELB's TCP listener close an idle backend connection after their
// idle timeout; an NLB's connections are the clients' own, bounded only by
// its TCP idle timeout.
func pinnedWindow(r *workload.Route) time.Duration {
	if r.IdleTimeout > 0 {
		return r.IdleTimeout
	}
	return defaults.NLBTCPIdleTimeout
}

// pinnedWindowOf is the longest pinnedWindow of w's instance routes; 0
// when it has none.
func pinnedWindowOf(w *workload.Workload) time.Duration {
	var d time.Duration
	for i := range w.Routes {
		if r := &w.Routes[i]; r.TargetType == "instance" {
			d = max(d, pinnedWindow(r))
		}
	}
	return d
}

// fixedDrain is the drain the kube-proxy-keepalive fix writes: past the
// pinned window by drainMargin; 0 when the app's own drain outlasts it or
// no route goes through kube-proxy.
func fixedDrain(w *workload.Workload) time.Duration {
	need := pinnedWindowOf(w)
	if !w.Served() || need == 0 || w.DrainDelay > need {
		return 0
	}
	return need + drainMargin
}

// drainFix sets DRAIN_DELAY (rollsafe/graceful's) on every serving
// container, and the grace period the drain needs.
func (c *run) drainFix(w *workload.Workload, drain time.Duration) (string, []Patch) {
	v := strconv.FormatInt(num(drain), 10)
	lines := []string{"# the app must answer \"Connection: close\" for this long after SIGTERM, then close idle connections;",
		"# rollsafe/graceful reads DRAIN_DELAY, other apps: do it and annotate " + workload.AnnotationDrainDelay + ": \"" + v + "\"",
		"containers:"}
	var cs []map[string]any
	for _, ct := range w.Containers {
		lines = append(lines, "- name: "+ct.Name, "  env:", "  - name: "+graceful.EnvDrainDelay, "    value: \""+v+"\"")
		cs = append(cs, map[string]any{"name": ct.Name, "env": []any{map[string]any{"name": graceful.EnvDrainDelay, "value": v}}})
	}
	if c.grace > 0 {
		lines = append(lines, "terminationGracePeriodSeconds: "+strconv.FormatInt(num(c.grace), 10))
	}
	return podSpecFix(lines...), []Patch{podPatch(w, c.grace, cs...)}
}

// kubeProxyKeepAlive: with instance targets the load balancer sends to
// NodePorts and each node's kube-proxy picks the pod. Removing a pod from
// the endpoints changes the rules for new connections only; established
// ones stay on it through conntrack (kubernetes#100698), and only the app
// can shed them: by answering "Connection: close" for longer than such a
// connection can sit idle (pinnedWindow), so each is either closed after
// one more answer or closed idle by the load balancer before the app exits.
func kubeProxyKeepAlive(c *run, w *workload.Workload) {
	drain := fixedDrain(w)
	if drain == 0 {
		return
	}
	fix, patches := c.drainFix(w, drain)
	known := "no drain is known (" + workload.AnnotationDrainDelay + " or a serving container's " + graceful.EnvDrainDelay + " env)"
	if w.DrainDelay > 0 {
		known = "the app drains " + secs(w.DrainDelay)
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "instance" {
			continue
		}
		pooled, idle := "clients' connections", "the NLB's TCP idle timeout"
		if r.L7 {
			pooled = "the load balancer's pooled keep-alive connections (carrying any client's requests)"
		}
		if r.IdleTimeout > 0 {
			idle = "the " + r.LB + "'s idle timeout"
		}
		drops := "each node drops the pod from its rules when it sees the endpoint change"
		if r.Local {
			drops = "each node drops the pod from its rules when it sees the endpoint change (with externalTrafficPolicy Local, a node whose only pods are terminating keeps forwarding to them until the load balancer's health check takes it out)"
		}
		obj, line := r.Locate(r.TargetTypeAt)
		c.report(w, Warning, obj, line, fix, patches,
			"%s (%s) reaches pods through kube-proxy: %s (no sooner than %s, min-sync-period, after its previous sync), but connections already established stay on the pod (conntrack, kubernetes#100698): %s keep reaching it; %s, and only a drain with \"Connection: close\" past %s (%s) sheds them before the app exits; the rest reset then (%s)",
			r.LB, r.Via, drops, secs(defaults.KubeProxyMinSyncPeriod), pooled, known, idle, secs(pinnedWindow(r)), graceText(w))
	}
}
