package nodeagent

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/observe/kube"
)

// ownedConditions are the pod conditions the kubelet writes. Every other
// condition in a pod's status belongs to someone else (readiness gates).
var ownedConditions = []corev1.PodConditionType{
	corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady,
}

func owned(t corev1.PodConditionType) bool {
	for _, o := range ownedConditions {
		if o == t {
			return true
		}
	}
	return false
}

// statusPatch is the strategic-merge patch for the status subresource that
// carries what the kubelet knows about snap. Conditions merge by type, so
// only the owned ones are sent; an empty reason or message is sent as null
// so that a stale one (why it was False) does not survive the change to True.
// containerStatuses is an atomic list: sent whole, it replaces the old one.
func statusPatch(snap *corev1.Pod) ([]byte, error) {
	st := snap.Status
	var conds []map[string]any
	for _, c := range st.Conditions {
		if !owned(c.Type) {
			continue
		}
		conds = append(conds, map[string]any{
			"type":               c.Type,
			"status":             c.Status,
			"reason":             nullIfEmpty(c.Reason),
			"message":            nullIfEmpty(c.Message),
			"lastTransitionTime": c.LastTransitionTime,
		})
	}
	status := map[string]any{
		"phase":             st.Phase,
		"hostIP":            st.HostIP,
		"hostIPs":           st.HostIPs,
		"podIP":             st.PodIP,
		"podIPs":            st.PodIPs,
		"startTime":         st.StartTime,
		"conditions":        conds,
		"containerStatuses": st.ContainerStatuses,
	}
	return json.Marshal(map[string]any{"status": status})
}

// startFailedPatch says why the pod's container could not be started, as a
// kubelet does with a waiting reason; the pod stays Pending.
func startFailedPatch(err error, now time.Time, container string) ([]byte, error) {
	return json.Marshal(map[string]any{"status": map[string]any{
		"phase": corev1.PodPending,
		"containerStatuses": []corev1.ContainerStatus{{
			Name:  container,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}},
		}},
		"conditions": []map[string]any{{
			"type": corev1.PodScheduled, "status": corev1.ConditionTrue, "lastTransitionTime": now.UTC().Format(time.RFC3339),
		}},
	}})
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// gateChanges lists the readiness-gate conditions whose status in the API
// (api) differs from what the running pod holds (running). A gate missing
// from the API status counts as False, as the kubelet counts it.
func gateChanges(api, running *corev1.Pod) map[corev1.PodConditionType]corev1.ConditionStatus {
	var out map[corev1.PodConditionType]corev1.ConditionStatus
	for _, g := range api.Spec.ReadinessGates {
		want := kube.ConditionStatus(api, g.ConditionType)
		if want == "" {
			want = corev1.ConditionFalse
		}
		have := kube.ConditionStatus(running, g.ConditionType)
		if have == "" {
			have = corev1.ConditionFalse
		}
		if want != have {
			if out == nil {
				out = map[corev1.PodConditionType]corev1.ConditionStatus{}
			}
			out[g.ConditionType] = want
		}
	}
	return out
}
