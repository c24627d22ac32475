// Package cluster is the lab's stand-in for a Kubernetes cluster: a
// Deployment controller with the real rolling-update arithmetic, ReplicaSets
// named by pod-template hash, and pods run as real processes by package
// kubelet on their own loopback addresses (127.0.x.y), all on one port.
//
// Semantics follow the Deployment docs and the deployment controller
// (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment,
// pkg/controller/deployment/rolling.go and util/deployment_util.go):
//
//   - maxSurge and maxUnavailable are ints or percentages of replicas
//     (default 25% each); surge rounds up, unavailable rounds down; if both
//     come out 0, unavailable is 1 (ResolveFenceposts).
//   - The new ReplicaSet scales up to at most replicas+maxSurge pods in all
//     ReplicaSets (NewRSNewReplicas). Old ReplicaSets first lose pods that
//     are not available (cleanupUnhealthyReplicas), then scale down only
//     while available pods stay above replicas-maxUnavailable
//     (scaleDownOldReplicaSetsForRollingUpdate), oldest first.
//   - A pod is available when it has been Ready for minReadySeconds.
//     Terminating pods count neither as pods nor as available, as in
//     Kubernetes (which is why maxSurge does not bound processes alive
//     during a rollout: old pods may still be draining).
//   - A ReplicaSet that has too many pods deletes the not-ready first, then
//     the most recently ready, then the newest (the ActivePods ranking).
//   - Rollout returns when the rollout is complete as `kubectl rollout
//     status` judges it: every replica updated and available and no old
//     pod left that is not terminating. progressDeadlineSeconds (default
//     600) without progress fails it.
//   - Recreate strategy: old pods are deleted and must be gone before new
//     ones are created.
//
// Durations (minReadySeconds, progressDeadlineSeconds and everything in the
// pod spec) are shrunk by Options.Scale, the same kubelet.TimeScale the pods
// use.
package cluster
