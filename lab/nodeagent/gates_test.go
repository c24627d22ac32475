package nodeagent

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// A readiness gate holds Ready False after the containers are ready, until
// another client (here the test, as the AWS Load Balancer Controller would)
// patches the gate condition True; the agent's own status patches never
// clobber that condition, and a gate turned False again takes Ready down.
func TestReadinessGateHoldsReady(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.13.1"))
	ctx := context.Background()
	tmpl := l.podTemplate(map[string]string{"app": "gated"}, "v1")
	tmpl.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
	l.createPod("gated", tmpl)

	// The gate controller is another identity, allowed only what the AWS
	// Load Balancer Controller needs here: patching pods/status.
	cfg, err := l.cp.User(ctx, l.ns, "gate-controller", nil, []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"get", "patch"}}})
	if err != nil {
		t.Fatal(err)
	}
	gateClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	got := l.waitPod("gated", "ContainersReady True", func(p *corev1.Pod) bool {
		return condition(p, corev1.ContainersReady) == corev1.ConditionTrue
	})
	if r := condition(got, corev1.PodReady); r != corev1.ConditionFalse {
		t.Fatalf("containers ready, gate unset: Ready = %q, want False (conditions %+v)", r, got.Status.Conditions)
	}
	if reason := readyReason(got); reason != "ReadinessGatesNotReady" {
		t.Fatalf("Ready reason %q, want ReadinessGatesNotReady", reason)
	}

	setGate(t, gateClient, l.ns, "gated", corev1.ConditionTrue)
	got = l.waitPod("gated", "Ready True", func(p *corev1.Pod) bool {
		return condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	if condition(got, gate) != corev1.ConditionTrue {
		t.Fatalf("gate condition after Ready: %+v", got.Status.Conditions)
	}
	if reason := readyReason(got); reason != "" {
		t.Fatalf("Ready True keeps a stale reason %q", reason)
	}

	setGate(t, gateClient, l.ns, "gated", corev1.ConditionFalse)
	got = l.waitPod("gated", "Ready False after the gate went False", func(p *corev1.Pod) bool {
		return condition(p, corev1.PodReady) == corev1.ConditionFalse
	})
	if condition(got, gate) != corev1.ConditionFalse || condition(got, corev1.ContainersReady) != corev1.ConditionTrue {
		t.Fatalf("conditions %+v", got.Status.Conditions)
	}
	if w := l.sink.warnings(); len(w) > 0 {
		t.Fatalf("agent warnings: %v", w)
	}
}

func setGate(t *testing.T, cs kubernetes.Interface, ns, name string, s corev1.ConditionStatus) {
	t.Helper()
	body := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"lastTransitionTime":%q}]}}`,
		gate, s, metav1.Now().UTC().Format("2006-01-02T15:04:05Z"))
	if _, err := cs.CoreV1().Pods(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("set gate %s: %v", s, err)
	}
}

func readyReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Reason
		}
	}
	return ""
}
