package timeline

// Cause is the stable name of why a failed request failed, as the lab knows
// it (its ground truth, KindTruth records) or as package attribution infers
// it from evidence alone (probe records, pod states from the Kubernetes API,
// polled target health, access logs) when report explains a recording or
// the lab checks itself against its truth. Never rename one.
type Cause string

const (
	// CauseNoRegisteredTarget: the target group had no registered target (ALB answers 503).
	CauseNoRegisteredTarget Cause = "no_registered_target"
	// CauseNoHealthyTarget: no target was healthy, the ALB failed open and
	// routed to a target that was still starting or already gone.
	CauseNoHealthyTarget Cause = "no_healthy_target"
	// CauseDrainingTargetExited: routed to a draining target (deregistration not
	// yet propagated to that LB node) whose process had already exited.
	CauseDrainingTargetExited Cause = "draining_target_exited"
	// CauseDrainingTargetGone: routed to a draining target whose pod had
	// already been deleted: its IP had left the network, the connect went
	// unanswered and the LB gave up after its connect timeout (504; seed
	// 000's `-1 -1 -1 504 -` after 10.2 s).
	CauseDrainingTargetGone Cause = "draining_target_gone"
	// CauseExitedBeforeDeregistration: the pod was terminating and its process
	// already gone while its target was still registered and in service (the
	// controller had not deregistered it yet): the app exited on SIGTERM
	// before the load balancer knew.
	CauseExitedBeforeDeregistration Cause = "exited_before_deregistration"
	// CauseKeepAliveRace: sent on a reused backend connection the target closed.
	CauseKeepAliveRace Cause = "keepalive_race"
	// CauseDeregistrationCut: in flight when the deregistration delay elapsed
	// (a Classic ELB's connection draining timeout; with draining off, at
	// once: the ELB closes a deregistered instance's connections).
	CauseDeregistrationCut Cause = "deregistration_delay_cut"
	// CauseKilledByGrace: in flight when the grace period ran out and the pod got SIGKILL.
	CauseKilledByGrace Cause = "killed_by_grace_period"
	// CauseTargetNotListening: routed to a registered target whose process was not (yet) listening.
	CauseTargetNotListening Cause = "target_not_listening"
	// CauseTargetTimeout: the target did not answer within the LB's timeout (504).
	CauseTargetTimeout Cause = "target_timeout"
	// CausePinnedConnectionReset: sent on a connection that stayed pinned
	// to a pod whose process then exited or was killed between requests:
	// kube-proxy does not move or flush established connections when an
	// endpoint is removed (kubernetes/kubernetes#100698), and an NLB keeps a
	// deregistered target's connections flowing (connection termination off
	// by default), so the load balancer's keep-alive connection kept
	// reaching the pod until its exit closed or reset it. Instance targets
	// and NLBs; an ALB ip target's own connections are draining_target_* or
	// keepalive_race.
	CausePinnedConnectionReset Cause = "pinned_connection_reset"
	// CauseStaleEndpoint: a node's kube-proxy forwarded a new connection to
	// a pod whose process had already exited (refused, 502) or whose pod was
	// deleted (unanswered, 504): the node had not yet applied the endpoint
	// change, its lag (instance targets only).
	CauseStaleEndpoint Cause = "stale_endpoint"
	// CauseIngressStaleEndpoint: an in-cluster ingress hop (ingress-nginx)
	// sent the request to a pod whose process had exited, before the hop
	// had learned of the endpoint's removal (its sync lag), or the pod
	// exited under a request the hop would not pass on to another
	// endpoint (a POST already sent, nginx's proxy_next_upstream), or all
	// its tries failed.
	CauseIngressStaleEndpoint Cause = "ingress_stale_endpoint"
	// CauseUnknown: failed, and the evidence at hand does not say why.
	CauseUnknown Cause = "unknown"
)
