package rollout_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/rollout"
)

// The control-plane test runs the real kube-apiserver, etcd and
// kube-controller-manager on loopback (no kubelet).
func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, controlplane.TestOptions)) }

func intOrPct(v string) *intstr.IntOrString {
	if v == "" {
		return nil
	}
	x := intstr.Parse(v)
	return &x
}

// What the real deployment controller does with maxSurge/maxUnavailable is
// what rollout.Fenceposts says. No kubelet runs, so no pod ever becomes
// ready: after the template changes, the controller creates the new
// ReplicaSet with exactly the surge (NewRSNewReplicas: replicas+maxSurge
// minus what exists), then scales the old one down by exactly
// maxUnavailable (cleanupUnhealthyReplicas; its pods are all unavailable),
// all in the sync that writes status.observedGeneration. Later syncs never
// scale the old one further (replicas-maxUnavailable is the floor), so its
// size once the generation is observed is replicas - maxUnavailable.
func TestFencepostsMatchKubeControllerManager(t *testing.T) {
	cp := controlplane.ForTest(t)
	cs := kubernetes.NewForConfigOrDie(cp.Config())
	for _, c := range []struct {
		replicas       int32
		surge, unavail string // "" leaves the field to the API server's default
	}{
		{3, "10%", "10%"}, // surge rounds up to 1: nothing rounds to 0 overall
		{3, "0", "10%"},   // both resolve to 0: the controller allows 1 unavailable
		{3, "0%", "25%"},
		{10, "25%", "25%"},
		{3, "0", "1"},
		{3, "2", "0"},
		{5, "50%", "30%"},
		{1, "", ""},
	} {
		name := fmt.Sprintf("%d-replicas-surge-%s-unavailable-%s", c.replicas, c.surge, c.unavail)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second) // a bound, not a speed claim
			defer cancel()
			wantS, wantU, err := rollout.Fenceposts(intOrPct(c.surge), intOrPct(c.unavail), int(c.replicas))
			if err != nil {
				t.Fatal(err)
			}
			ns := cp.TestNamespace(t, "rollout-")
			gotS, gotU := observe(ctx, t, cs, ns, c.replicas, intOrPct(c.surge), intOrPct(c.unavail))
			t.Logf("replicas %d maxSurge %q maxUnavailable %q: kube-controller-manager %d/%d, rollout.Fenceposts %d/%d",
				c.replicas, c.surge, c.unavail, gotS, gotU, wantS, wantU)
			if gotS != wantS || gotU != wantU {
				t.Errorf("kube-controller-manager surge %d unavailable %d; rollout.Fenceposts %d, %d", gotS, gotU, wantS, wantU)
			}
		})
	}
}

// webDeployment is Deployment name: replicas pods labelled app=web, one
// container, rolling with maxSurge surge and maxUnavailable unavail (nil
// leaves the field to the API server's default).
func webDeployment(name string, replicas int32, surge, unavail *intstr.IntOrString) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavail}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}}},
			},
		},
	}
}

// observe creates the Deployment in ns, lets its first ReplicaSet reach
// replicas, changes the template and returns the new ReplicaSet's size at
// creation (the surge) and how far the old one was scaled down
// (maxUnavailable).
func observe(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, replicas int32, surge, unavail *intstr.IntOrString) (int, int) {
	t.Helper()
	deps := cs.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctx, webDeployment("web", replicas, surge, unavail), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rss := cs.AppsV1().ReplicaSets(ns)
	var old *appsv1.ReplicaSet
	waitFor(ctx, t, "the first ReplicaSet at full size", func() bool {
		dep, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || dep.Status.ObservedGeneration < dep.Generation {
			return false
		}
		l, err := rss.List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 1 || *l.Items[0].Spec.Replicas != replicas {
			return false
		}
		old = &l.Items[0]
		return true
	})
	l, err := rss.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := rss.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.invalid/web:2"}]}}}}`
	dep, err := deps.Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newSize := -1
	for newSize < 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("ReplicaSet watch ended")
			}
			if rs, isRS := ev.Object.(*appsv1.ReplicaSet); isRS && ev.Type == watch.Added && rs.UID != old.UID {
				newSize = int(*rs.Spec.Replicas)
			}
		case <-ctx.Done():
			t.Fatal("no new ReplicaSet after the template change")
		}
	}
	// The controller scales the new ReplicaSet up in one sync and the old
	// one down in a later one (a busy machine can put a second between
	// them): wait until the old size has held still for settle after the
	// template change was observed. With no pod ever ready it cannot go
	// lower than the first scale-down.
	const settle = 2 * time.Second
	oldSize, changed := -1, time.Now()
	waitFor(ctx, t, "the old ReplicaSet's scale-down to settle", func() bool {
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration < dep.Generation {
			return false
		}
		rs, err := rss.Get(ctx, old.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		if n := int(*rs.Spec.Replicas); n != oldSize {
			oldSize, changed = n, time.Now()
		}
		return time.Since(changed) >= settle
	})
	return newSize, int(replicas) - oldSize
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BothZero is what the real API server rejects: both written as 0 (or 0 %),
// not a pair that only rounds to 0.
func TestBothZeroIsTheAPIServers(t *testing.T) {
	cp := controlplane.ForTest(t)
	cs := kubernetes.NewForConfigOrDie(cp.Config())
	ctx := t.Context()
	ns := cp.TestNamespace(t, "rollout-zero-")
	for i, c := range [][2]string{{"0", "0"}, {"0%", "0"}, {"0", "0%"}, {"0", "10%"}, {"10%", "0%"}} {
		ms, mu := intOrPct(c[0]), intOrPct(c[1])
		d := webDeployment(fmt.Sprintf("web-%d", i), 3, ms, mu)
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if rejected := err != nil; rejected != rollout.BothZero(ms, mu) {
			t.Errorf("maxSurge %s maxUnavailable %s: API server error %v, BothZero %v", c[0], c[1], err, rollout.BothZero(ms, mu))
		}
	}
}
