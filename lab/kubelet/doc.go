// Package kubelet runs one Kubernetes Pod (a *corev1.Pod from k8s.io/api) as a
// real child process on this machine, with the kubelet's semantics for
// readiness probes, readiness gates, preStop hooks, SIGTERM, the termination
// grace period and SIGKILL. The embedded lab's cluster stand-in uses it, and a
// node agent on a real control plane can use it too: every status change is
// reported both as a timeline.Record and as an updated *corev1.Pod whose
// Status can be patched into an API server.
//
// # Time
//
// Every duration in a Pod spec is whole seconds. The package applies one
// TimeScale (Options.Scale) to all of them, and to the kubelet's own constants
// (the 2 s stop extension, crash-loop back-off), in exactly one place:
// TimeScale.Seconds. The caller passes the real spec and the scale; it never
// pre-shrinks durations.
//
// # Semantics and where they come from
//
//   - Readiness probe (https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/,
//     ProbeV1 field docs): httpGet, tcpSocket and exec; initialDelaySeconds
//     (default 0), periodSeconds (default 10), timeoutSeconds (default 1),
//     successThreshold (default 1), failureThreshold (default 3). HTTP success
//     is 200 <= status < 400. Before the first success the container is not
//     ready; a container without a readiness probe is ready once running. The
//     prober ticks every period from the container's start and skips ticks
//     before initialDelaySeconds, as the kubelet's probe worker does. Probing
//     continues while the pod terminates (kubernetes/kubernetes#110191).
//   - Readiness gates (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate):
//     Ready = ContainersReady AND every spec.readinessGates condition is True;
//     a gate condition missing from status counts as False. Gates are set from
//     outside with Pod.SetCondition.
//   - Termination (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
//     and .../containers/container-lifecycle-hooks/): on deletion the preStop
//     hook runs (sleep, exec on the host, or httpGet to the pod IP), then the
//     main process gets SIGTERM. terminationGracePeriodSeconds (default 30)
//     counts from the deletion and includes the preStop time. If the hook is
//     still running when the grace period ends, or ends with less than 2 s to
//     go, the process still gets SIGTERM and 2 s more (the kubelet's
//     minimumGracePeriodInSeconds, documented as the "one-off grace period
//     extension of 2 seconds"), then SIGKILL. A process that exits before the
//     deadline ends the termination. The hook is not run when the container
//     has already exited ("the handler is not called if the container crashes
//     or exits", Lifecycle.preStop docs).
//   - SIGTERM goes to the main process only, as a container runtime signals
//     the container's PID 1 (a shell wrapper that does not forward it is the
//     same mistake here as in a container). SIGKILL, and the exit of the main
//     process, kill the whole process group, as the end of a container's PID
//     namespace does.
//   - restartPolicy (default Always): a container that exits on its own is
//     restarted after the kubelet's crash-loop back-off (10 s doubling to
//     300 s); with Never, or OnFailure and exit code 0, the pod ends in
//     Succeeded or Failed.
//
// # Processes never outlive the caller
//
// Each pod's process (and each exec hook or probe) runs in its own process
// group (Setpgid), so the whole group can be killed, and terminal Ctrl-C does
// not reach it directly: the caller decides. On Linux each child also gets
// Pdeathsig=SIGKILL, set from one OS thread that never exits (Pdeathsig fires
// when the creating thread dies, not the process), so a crash of the parent
// takes the child down. Pdeathsig does not reach grandchildren: a command that
// forks its real server (sh -c 'server &') leaves it behind if the parent is
// SIGKILLed; use exec. Cancelling the context passed to Start, or Close, kills
// the whole group at once.
//
// # Environment
//
// The child inherits the caller's environment (the lab runs host binaries,
// which need PATH and HOME), overlaid with the container's env (value, and
// fieldRef for the pod's name, namespace, uid, IP, labels and annotations;
// $(VAR) references expanded as Kubernetes does), then PORT, POD_IP,
// POD_NAME and POD_NAMESPACE set by the lab. Env sources the lab cannot
// provide (secrets, config maps, resource fields) are left unset and reported
// as a Warning record, never invented.
package kubelet
