package albcontroller_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/lab/albcontroller"
)

// The API server alone: this test writes the pod status a kubelet would.
func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, controlplane.Options{})) }

// TestWatchSetsGateThroughTheAPI: Watch registers a pod the API server
// shows ready, patches the gate condition True on the pod's status once
// the target is healthy, keeping the kubelet's conditions, and deregisters
// the target when the pod is deleted.
func TestWatchSetsGateThroughTheAPI(t *testing.T) {
	cp := controlplane.ForTest(t)
	cs, err := kubernetes.NewForConfig(cp.Config())
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "albcontroller-"}}, metav1.CreateOptions{})
	must(t, err)
	defer cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})

	f := newFixture(t, "127.0.0.2")
	p := pod("a", "", false, gate)
	p.Namespace, p.Labels = ns.Name, map[string]string{"app": "a"}
	p.Spec.Containers = []corev1.Container{{Name: "app", Image: "demo-api"}}
	created, err := cs.CoreV1().Pods(ns.Name).Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	c, err := albcontroller.Watch(ctx, cs, ns.Name, labels.SelectorFromSet(labels.Set{"app": "a"}),
		albcontroller.Options{LB: f.lb, Port: f.port, Lag: 0, Requeue: 20 * time.Millisecond})
	must(t, err)

	// What the kubelet reports once the container is up.
	created.Status.PodIP = "127.0.0.2"
	created.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.2"}}
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}
	_, err = cs.CoreV1().Pods(ns.Name).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	must(t, err)
	f.waitFor("target " + target(f, "127.0.0.2") + " healthy")
	got := waitGate(t, cs, ns.Name, "a")
	if !hasCondition(got, corev1.ContainersReady) {
		t.Errorf("the gate patch dropped the kubelet's ContainersReady: %+v", got.Status.Conditions)
	}

	must(t, cs.CoreV1().Pods(ns.Name).Delete(ctx, "a", metav1.DeleteOptions{}))
	f.waitFor("target " + target(f, "127.0.0.2") + " draining")
	cancel()
	waitIdle(t, c)
}

// waitGate polls the API until the pod's gate condition is True.
func waitGate(t *testing.T, cs kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	for i := 0; i < 1500; i++ { // liveness only: 30 s
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		must(t, err)
		if hasCondition(p, gate) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the gate condition never turned True on the pod")
	return nil
}

func hasCondition(p *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
