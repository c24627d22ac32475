package kubeproxy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFromPodAsTheEndpointSliceControllerPublishes(t *testing.T) {
	now := metav1.Now()
	pod := func(ip string, phase corev1.PodPhase, ready corev1.ConditionStatus, deleting bool) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{PodIP: ip, Phase: phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
		if deleting {
			p.DeletionTimestamp = &now
		}
		return p
	}
	addr := netip.MustParseAddrPort("127.1.1.1:1325")
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want Endpoint
		ok   bool
	}{
		{"ready", pod("127.1.1.1", corev1.PodRunning, corev1.ConditionTrue, false), Endpoint{Addr: addr, Node: "n1", Ready: true, Serving: true}, true},
		{"not ready", pod("127.1.1.1", corev1.PodRunning, corev1.ConditionFalse, false), Endpoint{Addr: addr, Node: "n1"}, true},
		{"terminating, still ready", pod("127.1.1.1", corev1.PodRunning, corev1.ConditionTrue, true), Endpoint{Addr: addr, Node: "n1", Serving: true, Terminating: true}, true},
		{"terminating, not ready", pod("127.1.1.1", corev1.PodRunning, corev1.ConditionFalse, true), Endpoint{Addr: addr, Node: "n1", Terminating: true}, true},
		{"no IP yet", pod("", corev1.PodPending, corev1.ConditionFalse, false), Endpoint{}, false},
		{"failed", pod("127.1.1.1", corev1.PodFailed, corev1.ConditionFalse, false), Endpoint{}, false},
	} {
		got, ok := FromPod(tc.pod, 1325)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: FromPod = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
