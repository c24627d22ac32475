package attribution

import (
	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/timeline"
)

// Explanation tells a reader what a cause means and what prevents it.
type Explanation struct {
	// Short is what happened to the requests, as a headline says it
	// ("227 were routed to …").
	Short string `json:"short"`
	// What happened, in one sentence.
	What string `json:"what"`
	// Fix is the setting that prevents it.
	Fix string `json:"fix,omitempty"`
	// Rule is the `rollsafe check` rule that flags the setting
	// (docs/rules/<Rule>.md), when there is one.
	Rule string `json:"rule,omitempty"`
}

var explanations = map[timeline.Cause]Explanation{
	timeline.CauseNoRegisteredTarget: {
		Short: "got a 503: no target was registered",
		What:  "The target group had no registered target, so the load balancer answered 503 itself.",
		Fix:   "Keep maxUnavailable 0 and give the pods a readiness gate, so a new pod is registered and healthy before an old one is deregistered.",
		Rule:  "rollout-strategy-unsafe"},
	timeline.CauseNoHealthyTarget: {
		Short: "were routed while no target was healthy (the ALB failed open)",
		What:  "No target was healthy, so the ALB failed open and routed to every registered target, including ones whose pod had already gone.",
		Fix:   "Turn on the readiness gate (label the namespace " + defaults.GateInjectLabel + "=enabled): a new pod is Ready only once its target is healthy.",
		Rule:  "readiness-gate-missing"},
	timeline.CauseDrainingTargetExited: {
		Short: "were routed to a draining target whose pod had already exited",
		What:  "The ALB still routed new requests to a deregistered (draining) target whose pod had already exited: the deregistration had not reached every ALB node yet.",
		Fix:   "A preStop sleep of at least controller lag + propagation P, so the app keeps serving until no ALB node routes to it.",
		Rule:  "prestop-too-short"},
	timeline.CauseDrainingTargetGone: {
		Short: "were routed to a draining target whose pod was already deleted (504 after the connect timeout)",
		What:  "The ALB still routed new requests to a draining target whose pod had been deleted: its IP no longer answered and the ALB gave up after its connect timeout (504).",
		Fix:   "A preStop sleep of at least controller lag + propagation P, so the pod and its IP outlive the ALB nodes' routing to it.",
		Rule:  "prestop-too-short"},
	timeline.CauseExitedBeforeDeregistration: {
		Short: "reached a pod that had exited before its target was even deregistered",
		What:  "The app exited on SIGTERM before the controller had even deregistered its target: the load balancer still had it in service.",
		Fix:   "A preStop sleep (lifecycle.preStop.sleep) of at least controller lag + propagation P before SIGTERM.",
		Rule:  "prestop-missing"},
	timeline.CauseKeepAliveRace: {
		Short: "were sent on a keep-alive connection the app had just closed",
		What:  "The request was sent on a kept-alive backend connection the app had just closed; the ALB does not retry it.",
		Fix:   "An app keep-alive (idle) timeout longer than the load balancer's idle timeout, and an app that does not close idle connections while it still gets traffic.",
		Rule:  "app-idle-timeout-too-short"},
	timeline.CauseDeregistrationCut: {
		Short: "were cut when the deregistration delay ran out",
		What:  "The request was still in flight when the deregistration delay ran out, and the load balancer closed its connection.",
		Fix:   "A deregistration delay longer than the longest request.",
		Rule:  "deregistration-delay-too-short"},
	timeline.CauseKilledByGrace: {
		Short: "were in flight when the grace period ran out (SIGKILL)",
		What:  "The request was in flight when the grace period ran out and the kubelet killed the container (SIGKILL).",
		Fix:   "terminationGracePeriodSeconds longer than the preStop plus the app's drain and shutdown.",
		Rule:  "prestop-exceeds-grace"},
	timeline.CausePinnedConnectionReset: {
		Short: "were sent on a connection still pinned to a pod that exited",
		What:  "The load balancer's keep-alive connection stayed on its pod (kube-proxy keeps established connections; an NLB keeps a deregistered target's connections) and the pod's exit closed or reset it under a request.",
		Fix:   "Let the app answer with Connection: close while it drains (graceful does), for longer than the load balancer's requests take to reach it, before it exits."},
	timeline.CauseStaleEndpoint: {
		Short: "were forwarded by a node's kube-proxy to a pod that had already exited",
		What:  "A node had not yet applied the endpoint change and forwarded a new connection to a pod whose process had exited or whose pod was deleted.",
		Fix:   "A preStop sleep (or the app's drain delay) longer than kube-proxy's lag, so the pod serves until every node has stopped choosing it."},
	timeline.CauseIngressStaleEndpoint: {
		Short: "were sent by ingress-nginx to a pod that had exited",
		What:  "ingress-nginx had not yet learned that the endpoint was gone (its sync lag) and sent the request to a pod whose process had exited, or the pod exited under a request nginx does not pass on to another pod (a POST already sent); GETs are retried on another pod and hide the same failures.",
		Fix:   "A preStop sleep longer than ingress-nginx's sync lag, and an app that finishes in-flight requests on SIGTERM."},
	timeline.CauseTargetNotListening: {
		Short: "reached a target whose app was not listening",
		What:  "The load balancer routed to a target whose app was not listening (yet).",
		Fix:   "A readiness probe on the port the app serves, and the readiness gate.",
		Rule:  "readiness-probe-missing"},
	timeline.CauseTargetTimeout: {
		Short: "timed out at the target",
		What:  "The target did not answer within the load balancer's timeout (504).",
		Fix:   "Find out why the app was slow; rollsafe has no setting for this."},
	timeline.CauseUnknown: {
		Short: "failed for reasons the evidence does not show",
		What:  "The evidence at hand does not say why the request failed."},
}

// Explain returns what a cause means and what prevents it.
func Explain(c timeline.Cause) Explanation {
	if e, ok := explanations[c]; ok {
		return e
	}
	return explanations[timeline.CauseUnknown]
}

func shortOf(c timeline.Cause) string { return Explain(c).Short }
