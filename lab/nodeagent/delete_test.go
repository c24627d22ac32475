package nodeagent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
)

// kubectl delete --grace-period=1 on a pod whose spec allows 3000 s (300 s
// at the test's scale) and whose process ignores SIGTERM: the agent honours
// the API's shorter grace period, so the process dies and the object goes
// well inside the test's patience; with the spec's grace it would outlive it.
func TestDeleteHonoursShorterGracePeriod(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.15.1"))
	tmpl := l.podTemplate(map[string]string{"app": "stubborn"}, "v1")
	long := int64(3000)
	tmpl.Spec.TerminationGracePeriodSeconds = &long
	tmpl.Spec.Containers[0].Lifecycle = nil
	tmpl.Spec.Containers[0].Env = append(tmpl.Spec.Containers[0].Env, kubelettest.Server{IgnoreSIGTERM: true}.Env()...)
	l.createPod("stubborn", tmpl)
	p := l.waitPod("stubborn", "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
	proc := pid(t, p)
	one := int64(1)
	l.deletePod("stubborn", metav1.DeleteOptions{GracePeriodSeconds: &one})
	if !kubelettest.ProcessGone(proc) {
		t.Fatalf("process %d still runs after its pod was deleted", proc)
	}
}

// A pod the lab cannot run (two containers) is bad input: its status says
// why in the container's waiting reason, nothing runs, and deleting it
// removes it at once.
func TestPodThatCannotStart(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.16.1"))
	tmpl := l.podTemplate(map[string]string{"app": "two"}, "v1")
	second := tmpl.Spec.Containers[0]
	second.Name = "sidecar"
	tmpl.Spec.Containers = append(tmpl.Spec.Containers, second)
	l.createPod("two", tmpl)
	p := l.waitPod("two", "with a waiting reason", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil
	})
	w := p.Status.ContainerStatuses[0].State.Waiting
	if w.Reason != "CreateContainerError" || !strings.Contains(w.Message, "2 containers") || p.Status.Phase != corev1.PodPending {
		t.Fatalf("phase %s, waiting %+v", p.Status.Phase, w)
	}
	if warns := l.sink.warnings(); len(warns) != 1 || !strings.Contains(warns[0], "2 containers") {
		t.Fatalf("warnings %v, want one saying why", warns)
	}
	l.deletePod("two", metav1.DeleteOptions{})
}

// Bad options are one clear error and register nothing.
func TestStartRejectsBadOptions(t *testing.T) {
	cp := controlplaneConfig(t)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no config", Options{Port: 8080}, "no API server config"},
		{"bad port", Options{Config: cp, Port: 0}, "bad pod port 0"},
		{"bad node name", Options{Config: cp, Port: 8080, NodeName: "Not_A_Name"}, `bad node name "Not_A_Name"`},
		{"foreign first IP", Options{Config: cp, Port: 8080, FirstIP: netip.MustParseAddr("192.0.2.1")}, "not an address of this host"},
		{"IPv6 first IP", Options{Config: cp, Port: 8080, FirstIP: netip.MustParseAddr("::1")}, "not IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Start(context.Background(), tc.opts)
			if err == nil {
				a.Stop()
				t.Fatalf("Start succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line containing %q", err, tc.want)
			}
		})
	}
}
