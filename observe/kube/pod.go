package kube

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/timeline"
)

// Pod states, in the order a pod normally goes through them. They are the
// lanes report draws; never rename one.
const (
	StatePending     = "Pending"     // not running yet: unscheduled, pulling, starting
	StateRunning     = "Running"     // phase Running, not Ready (probe or a readiness gate still false)
	StateReady       = "Ready"       // condition Ready=True: the pod receives traffic
	StateTerminating = "Terminating" // deletionTimestamp set: preStop, SIGTERM, grace period
	StateExited      = "Exited"      // phase Succeeded or Failed
	StateDeleted     = "Deleted"     // gone from the API (a watch's delete event)
)

// PodState maps a pod to its timeline state. Deletion wins over readiness:
// a terminating pod can still report Ready=True until the kubelet notices,
// but the EndpointSlice already marks it terminating.
func PodState(p *corev1.Pod) string {
	switch {
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return StateExited
	case p.DeletionTimestamp != nil:
		return StateTerminating
	case ConditionStatus(p, corev1.PodReady) == corev1.ConditionTrue:
		return StateReady
	case p.Status.Phase == corev1.PodRunning:
		return StateRunning
	default:
		return StatePending
	}
}

// PodAttrs is everything about a pod that matters to a rollout's story.
// Keys: namespace, phase, ip, node, gates (the pod's readiness-gate
// condition types), cond/<Type> (True/False/Unknown, Absent for a gate not
// yet reported), container/<name> and init/<name> (waiting:<reason>,
// running, running+ready, terminated:<reason>:<exit code>, with
// restarts=N appended once it restarted), deletion_timestamp (as the API
// sets it: when the grace period ends, so a forced deletion moves it back),
// deletion_grace_seconds, grace_seconds (terminationGracePeriodSeconds).
func PodAttrs(p *corev1.Pod) map[string]string {
	a := map[string]string{"namespace": p.Namespace, "resource": "pod"}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set("phase", string(p.Status.Phase))
	set("ip", p.Status.PodIP)
	set("node", p.Spec.NodeName)
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		a["grace_seconds"] = strconv.FormatInt(*g, 10)
	}
	for _, c := range p.Status.Conditions {
		a["cond/"+string(c.Type)] = string(c.Status)
	}
	var gates []string
	for _, g := range p.Spec.ReadinessGates {
		gates = append(gates, string(g.ConditionType))
		if _, ok := a["cond/"+string(g.ConditionType)]; !ok {
			a["cond/"+string(g.ConditionType)] = "Absent"
		}
	}
	set("gates", strings.Join(gates, ","))
	for _, s := range p.Status.InitContainerStatuses {
		a["init/"+s.Name] = containerState(s)
	}
	for _, s := range p.Status.ContainerStatuses {
		a["container/"+s.Name] = containerState(s)
	}
	if t := p.DeletionTimestamp; t != nil {
		a["deletion_timestamp"] = t.UTC().Format(time.RFC3339)
	}
	if g := p.DeletionGracePeriodSeconds; g != nil {
		a["deletion_grace_seconds"] = strconv.FormatInt(*g, 10)
	}
	return a
}

func containerState(s corev1.ContainerStatus) string {
	var v string
	switch st := s.State; {
	case st.Terminated != nil:
		v = fmt.Sprintf("terminated:%s:%d", st.Terminated.Reason, st.Terminated.ExitCode)
	case st.Running != nil && s.Ready:
		v = "running+ready"
	case st.Running != nil:
		v = "running"
	case st.Waiting != nil:
		v = "waiting:" + st.Waiting.Reason
	default:
		v = "unknown"
	}
	if s.RestartCount > 0 {
		v += fmt.Sprintf(" restarts=%d", s.RestartCount)
	}
	return v
}

// ConditionStatus is the status of p's condition t, "" when p has none.
func ConditionStatus(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func (w *watcher) pod(obj any, deleted bool) (observation, bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return observation{}, false
	}
	o := observation{
		kind: timeline.KindPod, key: "pod/" + p.Namespace + "/" + p.Name, object: p.Name,
		state: PodState(p), attrs: PodAttrs(p),
	}
	if deleted {
		o.state = StateDeleted
	}
	return o, true
}
