// Package kubeproxy is the lab's stand-in for kube-proxy on the nodes behind
// an instance-target load balancer (ALB/CLB/NLB target type "instance"):
// the load balancer's targets are nodes on their NodePort, and each node's
// kube-proxy forwards every new TCP connection to one pod endpoint. One Node
// runs per lab node, on its own loopback address, like the pods.
//
// What it models, and where each behaviour comes from:
//
//   - Each node learns an endpoint change after its own lag (Config.Lag,
//     default 1 s: kube-proxy's iptables minSyncPeriod, the longest a
//     change waits for the sync rate limiter; pkg/proxy/apis/config/v1alpha1
//     defaults.go, and the virtual-ips page's minSyncPeriod section).
//     Nothing published gives the whole watch-to-rules latency: the
//     network programming latency SLO is WIP with no figure
//     (kubernetes/community sig-scalability/slos/network_programming_latency.md).
//   - A new connection goes to an endpoint picked at random, as the
//     iptables and nftables modes do ("select a backend Pod at random",
//     https://kubernetes.io/docs/reference/networking/virtual-ips/); the
//     stand-in's random source is seeded (Config.Seed), so the same
//     connections in the same order get the same choices.
//   - An established connection stays pinned to its pod for its whole life:
//     kube-proxy does not flush TCP conntrack entries when an endpoint is
//     removed (kubernetes/kubernetes#100698; the flush, PR #100755, was
//     closed because it would break graceful teardown). So a load
//     balancer's keep-alive connection keeps reaching a terminating pod
//     until one side closes it; when the pod's process exits, its kernel
//     closes or resets the connection and the stand-in passes that on
//     (FIN as FIN, RST as RST).
//   - Endpoint choice per node, as pkg/proxy/topology.go CategorizeEndpoints
//     does it: Ready endpoints; if none, endpoints that are serving and
//     terminating (ProxyTerminatingEndpoints, KEP-1669, stable since 1.28
//     per the virtual-ips page). externalTrafficPolicy Cluster uses every
//     endpoint in the cluster, Local only the node's own, and the fallback
//     applies to each: KEP-1669 scopes it to the traffic policy and extended
//     it to every policy in 1.24, and CategorizeEndpoints falls back
//     "independently for Cluster and Local" (the virtual-ips page describes
//     it for Local only).
//   - No usable endpoint: if the Service has no ready or serving-terminating
//     endpoint anywhere, kube-proxy REJECTs a connection to the NodePort
//     (the client's connect is refused); if it has some, but none on this
//     node (Local), it DROPs it (the client's connect goes unanswered).
//     pkg/proxy/iptables/proxier.go syncProxyRules: "has no endpoints" →
//     REJECT, "has no local endpoints" → DROP.
//   - With Local, the health-check node port (healthCheckNodePort) answers
//     200 while the node has at least one local Ready endpoint and 503
//     otherwise — terminating endpoints do not count even when they serve
//     (KEP-1669: "kube-proxy's node port health check should fail if there
//     are only Terminating endpoints, regardless of their readiness";
//     pkg/proxy/healthcheck/service_health.go and
//     EndpointsMap.LocalReadyEndpoints). It answers any path.
//
// A Reject is exact as the client sees it: the node closes its NodePort
// listener and the kernel refuses the connect. The rest cannot be: a userspace listener sees a
// connection only after the handshake, so a Node's listener holds a dropped
// connection open without an answer for its whole life (a real client's
// retransmitted SYN could get through once the node learns an endpoint),
// and resets (RST) one whose chosen pod refuses. The client sees an accepted connection that then hangs or
// fails, where behind iptables DNAT its connect would go unanswered or be
// refused. DialContext connects as DNAT does (refused, unanswered, or
// straight to the pod, the pod's refusal included) for a load balancer
// stand-in that can dial through it.
//
// Every record a Node writes is ground truth (Source "lab"): what the node
// knew and when. Which pod a connection was pinned to is kept in counters
// (Stats), not in records, and the lab's attribution must not read either.
package kubeproxy
