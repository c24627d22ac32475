// Package nodeagent is the lab's node on a real Kubernetes control plane: it
// does the job of a kubelet for one Node, with package kubelet doing the pod
// work, so the embedded lab and a real API server run pods with one
// implementation of probes, readiness gates, preStop, SIGTERM, grace and
// SIGKILL.
//
// What it does, as the kubelet does it
// (https://kubernetes.io/docs/concepts/architecture/nodes/):
//
//   - Registers a Node (Ready, no taints, address 127.0.0.1, large
//     allocatable) and keeps it alive: it renews the node's Lease in
//     kube-node-lease and refreshes the Ready condition's heartbeat, so the
//     node lifecycle controller never marks it NotReady, taints it or evicts
//     its pods. Stop deletes the Node (the Lease is owned by it).
//   - Watches the pods bound to the node (field selector spec.nodeName) in
//     every namespace and runs each as a real process on its own loopback
//     address (127.0.x.y, allocated as the embedded lab does), patching the
//     pod's status subresource after every change: phase, IPs, start time,
//     the conditions the kubelet owns and the container status.
//   - Conditions are patched by type (strategic merge), and only the four the
//     kubelet owns (PodScheduled, Initialized, ContainersReady, Ready): a
//     readiness-gate condition set by another client, such as the AWS Load
//     Balancer Controller's target-health.elbv2.k8s.aws/<name>, is never
//     overwritten. When such a condition changes in the API it is handed to
//     the running pod (kubelet.Pod.SetCondition), so Ready follows it.
//   - When a pod gets a deletionTimestamp it terminates it gracefully
//     (preStop, SIGTERM, grace, SIGKILL) and, once the process is gone,
//     deletes the object with grace period 0 — how a kubelet finishes a
//     graceful deletion — and only then frees the address.
//
// Pod addresses and EndpointSlices: the API server stores loopback pod IPs,
// but its EndpointSlice (and Endpoints) validation refuses 127.0.0.0/8
// ("may not be in the loopback range"), so the EndpointSlice controller
// publishes no slice for a Service with loopback pods. Pods that must appear
// in EndpointSlices need a range that is local to this host without being
// loopback: Options.FirstIP 198.18.x.y after `ip addr add 198.18.0.1/16 dev
// lo` (RFC 2544's benchmarking range; the local route keeps packets on lo),
// or Options.PodAddr, which writes another address into the pod's status
// while the pod listens on loopback (the lab's --kube instance and ingress
// paths, which map it back wherever they dial a pod).
//
// Time: the node's own heartbeats run in real time (the controller-manager
// watches them in real time); only pod durations are scaled (Options.Scale).
package nodeagent
