package check

import (
	"strconv"
	"strings"

	"github.com/rollsafe/rollsafe/defaults"
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

// kubeProxyKeepAlive: with instance targets the load balancer sends to
// NodePorts and each node's kube-proxy picks the pod. Removing a pod from
// the endpoints changes the rules for new connections only; established
// ones stay on it through conntrack (kubernetes#100698).
func kubeProxyKeepAlive(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for i := range w.Routes {
		r := &w.Routes[i]
		if r.TargetType != "instance" {
			continue
		}
		pooled := "clients' connections"
		if r.L7 {
			pooled = "the load balancer's pooled keep-alive connections (carrying any client's requests)"
		}
		obj, line := r.Locate(r.TargetTypeAt)
		c.report(w, Warning, obj, line,
			yamlFix("# in the app: when its drain begins, answer with \"Connection: close\" and close idle keep-alive connections",
				"# (Go: http.Server.Shutdown does both)"), nil,
			"%s (%s) reaches pods through kube-proxy: each node drops the pod from its rules when it sees the endpoint change, on its own clock (no sooner than %s, min-sync-period, after its previous sync), and connections already established stay on the pod (conntrack, kubernetes#100698): %s keep reaching it through the preStop; unless the app closes them while it drains they reset when it exits, at the end of the grace period: %s",
			r.LB, r.Via, secs(defaults.KubeProxyMinSyncPeriod), pooled, graceText(w))
	}
}
