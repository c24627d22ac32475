package kube_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/observe/kube"
	"github.com/rollsafe/rollsafe/timeline"
)

// Every test here runs against a real kube-apiserver + etcd +
// kube-controller-manager (its EndpointSlice, Deployment and ReplicaSet
// controllers are the real ones). No kubelet runs: the tests write pod
// status themselves, as a kubelet would.
func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.TestOptions))
}

const gate = "target-health.elbv2.k8s.aws/k8s-web-tg"

// recorder collects everything a watch emits.
type recorder struct {
	mu   sync.Mutex
	recs []timeline.Record
	done chan struct{} // closed once the watch has stopped
}

func record(t *testing.T, cs kubernetes.Interface, opts kube.Options) (*recorder, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &recorder{done: make(chan struct{})}
	w, err := kube.Start(ctx, cs, opts, func(rec *timeline.Record) error {
		r.mu.Lock()
		r.recs = append(r.recs, *rec)
		r.mu.Unlock()
		return nil
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var werr error
	go func() { defer close(r.done); werr = w.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if werr != nil {
			t.Error(werr)
		}
	})
	return r, cancel
}

// waitFor waits until a record matching want has arrived. The bound only
// keeps a broken run from hanging; nothing here asserts speed.
func (r *recorder) waitFor(t *testing.T, desc string, want func(timeline.Record) bool) timeline.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, rec := range r.recs {
			if want(rec) {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no record %s; got:\n%s", desc, r.dump())
	return timeline.Record{}
}

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.recs {
		fmt.Fprintf(&b, "  %s %s %s %q\n", rec.Kind, rec.Object, rec.State, rec.Reason)
	}
	return b.String()
}

// states lists, in arrival order, the states recorded for one object.
func (r *recorder) states(kind timeline.Kind, object string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, rec := range r.recs {
		if rec.Kind == kind && rec.Object == object {
			s = append(s, rec.State)
		}
	}
	return s
}

func is(kind timeline.Kind, object, state string) func(timeline.Record) bool {
	return func(r timeline.Record) bool { return r.Kind == kind && r.Object == object && r.State == state }
}

// setup returns an admin client and a fresh namespace named after prefix,
// so that tests can run again (-count) against the shared control plane.
func setup(t *testing.T, prefix string) (*kubernetes.Clientset, string) {
	t.Helper()
	cp := controlplane.ForTest(t)
	cs := kubernetes.NewForConfigOrDie(cp.Config())
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cs, ns.Name
}

// A pod behind a Service goes through its whole life: created with a
// readiness gate, containers ready, gate flipped, deleted with a grace
// period, readiness lost while terminating, removed. The pod lane and the
// endpoint lane (written by the real EndpointSlice controller) each come out
// in order, with no duplicates, and an unselected pod stays out.
func TestPodLifecycle(t *testing.T) {
	cs, ns := setup(t, "obs-pod")
	ctx := t.Context()
	// The EndpointSlice controller skips pods whose Node it cannot find.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "obs-node"}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(1325)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec, _ := record(t, cs, kube.Options{Namespace: ns, Selector: "app=web"})

	pods := cs.CoreV1().Pods(ns)
	grace := int64(30)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			// Bound to a node so that deletion is graceful, as for a real pod.
			NodeName:                      "obs-node",
			TerminationGracePeriodSeconds: &grace,
			ReadinessGates:                []corev1.PodReadinessGate{{ConditionType: gate}},
			Containers: []corev1.Container{{Name: "app", Image: "demo",
				Ports: []corev1.ContainerPort{{ContainerPort: 1325}}}},
		},
	}
	other := pod.DeepCopy()
	other.Name, other.Labels = "db-1", map[string]string{"app": "db"}
	for _, p := range []*corev1.Pod{pod, other} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	created := rec.waitFor(t, "web-1 Pending", is(timeline.KindPod, "web-1", kube.StatePending))
	if created.Source != kube.Source || created.Reason != "added" {
		t.Errorf("created record: source %q reason %q", created.Source, created.Reason)
	}
	if created.Attrs["gates"] != gate || created.Attrs["cond/"+gate] != "Absent" || created.Attrs["node"] != "obs-node" {
		t.Errorf("created record attrs: %v", created.Attrs)
	}

	// The kubelet's part: running, containers ready, gate not yet true.
	setStatus := func(mutate func(*corev1.PodStatus)) {
		t.Helper()
		p, err := pods.Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(&p.Status)
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cond := func(typ corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: s, LastTransitionTime: metav1.Now()}
	}
	setStatus(func(s *corev1.PodStatus) {
		s.Phase, s.PodIP = corev1.PodRunning, "10.1.0.5"
		s.PodIPs = []corev1.PodIP{{IP: "10.1.0.5"}}
		s.Conditions = []corev1.PodCondition{cond(corev1.ContainersReady, "True"), cond(corev1.PodReady, "False"), cond(gate, "False")}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	})
	running := rec.waitFor(t, "web-1 Running", is(timeline.KindPod, "web-1", kube.StateRunning))
	if running.Attrs["ip"] != "10.1.0.5" || running.Attrs["container/app"] != "running+ready" || running.Attrs["cond/"+gate] != "False" {
		t.Errorf("running record attrs: %v", running.Attrs)
	}
	rec.waitFor(t, "endpoint web-1 not-ready", is(timeline.KindEvent, "web-1", kube.EndpointNotReady))

	// The load balancer controller's part: the target is healthy, gate True.
	setStatus(func(s *corev1.PodStatus) {
		s.Conditions = []corev1.PodCondition{cond(corev1.ContainersReady, "True"), cond(corev1.PodReady, "True"), cond(gate, "True")}
	})
	ready := rec.waitFor(t, "web-1 Ready", is(timeline.KindPod, "web-1", kube.StateReady))
	if !strings.Contains(ready.Reason, "cond/"+gate+" False→True") {
		t.Errorf("ready record reason %q does not name the gate flip", ready.Reason)
	}
	ep := rec.waitFor(t, "endpoint web-1 ready", is(timeline.KindEvent, "web-1", kube.EndpointReady))
	if ep.Attrs["service"] != "web" || ep.Attrs["address"] != "10.1.0.5" || ep.Attrs["node"] != "obs-node" {
		t.Errorf("endpoint attrs: %v", ep.Attrs)
	}

	// Changes that mean nothing to a rollout: a label added to the
	// pod, and the same status written again. No record may come of them.
	if _, err := pods.Patch(ctx, "web-1", types.MergePatchType, []byte(`{"metadata":{"annotations":{"noise":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	setStatus(func(*corev1.PodStatus) {})

	// Deleted with a grace period: terminating, still serving.
	if err := pods.Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	term := rec.waitFor(t, "web-1 Terminating", is(timeline.KindPod, "web-1", kube.StateTerminating))
	if term.Attrs["deletion_timestamp"] == "" || term.Attrs["deletion_grace_seconds"] != "30" {
		t.Errorf("terminating record attrs: %v", term.Attrs)
	}
	rec.waitFor(t, "endpoint web-1 serving-terminating", is(timeline.KindEvent, "web-1", kube.EndpointServingTerminating))

	// SIGTERM made the readiness probe fail.
	setStatus(func(s *corev1.PodStatus) {
		s.Conditions = []corev1.PodCondition{cond(corev1.ContainersReady, "False"), cond(corev1.PodReady, "False"), cond(gate, "True")}
		s.ContainerStatuses[0].Ready = false
	})
	rec.waitFor(t, "web-1 not ready while terminating", func(r timeline.Record) bool {
		return is(timeline.KindPod, "web-1", kube.StateTerminating)(r) && r.Attrs["cond/Ready"] == "False"
	})
	rec.waitFor(t, "endpoint web-1 terminating", is(timeline.KindEvent, "web-1", kube.EndpointTerminating))

	// The kubelet confirms the containers are gone.
	zero := int64(0)
	if err := pods.Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "web-1 grace cut to 0", func(r timeline.Record) bool {
		return is(timeline.KindPod, "web-1", kube.StateTerminating)(r) && r.Attrs["deletion_grace_seconds"] == "0"
	})
	rec.waitFor(t, "web-1 Deleted", is(timeline.KindPod, "web-1", "Deleted"))
	rec.waitFor(t, "endpoint web-1 removed", is(timeline.KindEvent, "web-1", "removed"))

	if got, want := rec.states(timeline.KindPod, "web-1"),
		[]string{"Pending", "Running", "Ready", "Terminating", "Terminating", "Terminating", "Deleted"}; !slices.Equal(got, want) {
		t.Errorf("pod lane = %v, want %v\n%s", got, want, rec.dump())
	}
	if got, want := rec.states(timeline.KindEvent, "web-1"),
		[]string{"not-ready", "ready", "serving-terminating", "terminating", "removed"}; !slices.Equal(got, want) {
		t.Errorf("endpoint lane = %v, want %v\n%s", got, want, rec.dump())
	}
	if s := rec.states(timeline.KindPod, "db-1"); len(s) > 0 {
		t.Errorf("unselected pod db-1 recorded: %v", s)
	}
	// Records come stamped in arrival order.
	rec.mu.Lock()
	for i := 1; i < len(rec.recs); i++ {
		if rec.recs[i].Time.Before(rec.recs[i-1].Time) {
			t.Errorf("record %d is older than record %d", i, i-1)
		}
	}
	rec.mu.Unlock()
}

// A Deployment rolled by the real deployment and ReplicaSet controllers:
// the rollout lane goes Progressing → Complete for revision 1, again for
// revision 2, and the old ReplicaSet ends ScaledDown.
func TestDeploymentRollout(t *testing.T) {
	cs, ns := setup(t, "obs-deploy")
	ctx := t.Context()
	rec, _ := record(t, cs, kube.Options{Namespace: ns, Selector: "app=api"})

	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec: corev1.PodSpec{
					// No node matches: the scheduler leaves the pods alone, and
					// deleting an unscheduled pod needs no kubelet.
					NodeSelector: map[string]string{"rollsafe.dev/none": "true"},
					Containers:   []corev1.Container{{Name: "app", Image: "demo"}},
				},
			},
		},
	}
	deploys := cs.AppsV1().Deployments(ns)
	if _, err := deploys.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Act as the kubelet: every pod of the deployment becomes Ready.
	readyAll := func(hash string) {
		t.Helper()
		sel := "app=api,pod-template-hash=" + hash
		deadline := time.Now().Add(60 * time.Second)
		done := map[string]bool{}
		for len(done) < int(replicas) && time.Now().Before(deadline) {
			list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list.Items {
				if done[p.Name] || p.DeletionTimestamp != nil {
					continue
				}
				p.Status.Phase, p.Status.PodIP = corev1.PodRunning, "10.2.0.1"
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: "True", LastTransitionTime: metav1.Now()}}
				if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err == nil {
					done[p.Name] = true
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(done) < int(replicas) {
			t.Fatalf("only %d pods of %s made ready\n%s", len(done), sel, rec.dump())
		}
	}
	rs1 := rec.waitFor(t, "ReplicaSet revision 1", func(r timeline.Record) bool {
		return r.Kind == timeline.KindRollout && r.Attrs["resource"] == "replicaset" && r.Attrs["revision"] == "1"
	})
	if rs1.Attrs["deployment"] != "api" {
		t.Errorf("replicaset attrs: %v", rs1.Attrs)
	}
	readyAll(rs1.Attrs["pod_template_hash"])
	rec.waitFor(t, "api Complete at revision 1", func(r timeline.Record) bool {
		return is(timeline.KindRollout, "api", kube.RolloutComplete)(r) && r.Attrs["revision"] == "1"
	})

	// A rollout as `kubectl rollout restart` starts one.
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"rollsafe.dev/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := deploys.Patch(ctx, "api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rs2 := rec.waitFor(t, "ReplicaSet revision 2", func(r timeline.Record) bool {
		return r.Kind == timeline.KindRollout && r.Attrs["resource"] == "replicaset" && r.Attrs["revision"] == "2"
	})
	readyAll(rs2.Attrs["pod_template_hash"])
	rec.waitFor(t, "api Complete at revision 2", func(r timeline.Record) bool {
		return is(timeline.KindRollout, "api", kube.RolloutComplete)(r) && r.Attrs["revision"] == "2"
	})
	rec.waitFor(t, "old ReplicaSet ScaledDown", is(timeline.KindRollout, rs1.Object, kube.ReplicaSetScaledDown))

	// The deployment lane: progress, complete, progress, complete; repeated
	// states are progress steps (their counts changed), never duplicates.
	lane := slices.Compact(rec.states(timeline.KindRollout, "api"))
	if want := []string{"Progressing", "Complete", "Progressing", "Complete"}; !slices.Equal(lane, want) {
		t.Errorf("deployment lane = %v, want %v\n%s", lane, want, rec.dump())
	}
	// Old pods were deleted; each pod's lane ends Deleted exactly once.
	rec.mu.Lock()
	deleted := map[string]int{}
	for _, r := range rec.recs {
		if r.Kind == timeline.KindPod && r.State == "Deleted" {
			deleted[r.Object]++
		}
	}
	rec.mu.Unlock()
	if len(deleted) != int(replicas) {
		t.Errorf("deleted pods = %v, want the %d of revision 1", deleted, replicas)
	}
	for name, n := range deleted {
		if n != 1 {
			t.Errorf("pod %s Deleted %d times", name, n)
		}
	}
}

// Identical consecutive records would mean the dedupe failed; check it on
// every record a lifecycle produced, all objects at once.
func TestNoDuplicateRecords(t *testing.T) {
	cs, ns := setup(t, "obs-dup")
	rec, cancel := record(t, cs, kube.Options{Namespace: ns})
	pods := cs.CoreV1().Pods(ns)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}},
			NodeSelector: map[string]string{"rollsafe.dev/none": "true"}}}
	if _, err := pods.Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Ten metadata-only updates: one record for the creation, none for these.
	for i := range 10 {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"n":"%d"}}}`, i)
		if _, err := pods.Patch(t.Context(), "p", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pods.Delete(t.Context(), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "p Deleted", is(timeline.KindPod, "p", "Deleted"))
	cancel()
	<-rec.done
	// The lane is short: created, maybe PodScheduled=False from the
	// scheduler, the apiserver's zero-grace deletion mark, deleted.
	if lane := rec.states(timeline.KindPod, "p"); lane[0] != "Pending" || lane[len(lane)-1] != "Deleted" || len(lane) > 4 {
		t.Errorf("pod lane = %v: the annotation updates leaked through\n%s", lane, rec.dump())
	}
	// And no two consecutive records of one object say the same thing.
	last := map[string]timeline.Record{}
	for _, r := range rec.recs {
		k := string(r.Kind) + "/" + r.Object
		if prev, ok := last[k]; ok && prev.State == r.State && maps.Equal(prev.Attrs, r.Attrs) {
			t.Errorf("duplicate record for %s: %s %v", k, r.State, r.Attrs)
		}
		last[k] = r
	}
}

func TestPreflightNamesTheResource(t *testing.T) {
	cp := controlplane.ForTest(t)
	cfg, err := cp.ServiceAccount(t.Context(), "obs-rbac", "pods-only", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	_, err = kube.Start(t.Context(), cs, kube.Options{Namespace: "obs-rbac"}, discard)
	if err == nil || !strings.Contains(err.Error(), "cannot list pods in namespace obs-rbac") || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("err = %v, want a forbidden error naming pods and the namespace", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []kube.Options{{Selector: "app in (("}, {Resources: []kube.Resource{"services"}}} {
		if _, err := kube.Start(t.Context(), kubernetes.New(nil), o, discard); err == nil {
			t.Errorf("Start(%+v): no error", o)
		}
	}
}

// A sink that fails stops the watch: its error comes back (from Start when
// it failed on the initial listing, else from Wait), and no record reaches
// it after the failure, though pods keep changing.
func TestSinkErrorStopsTheWatch(t *testing.T) {
	cs, ns := setup(t, "obs-sink")
	ctx := t.Context()
	pods := cs.CoreV1().Pods(ns)
	mk := func(name string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "demo"}}}}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	full := errors.New("disk full")
	var mu sync.Mutex
	calls := 0
	sink := func(*timeline.Record) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return full
	}
	w, err := kube.Start(ctx, cs, kube.Options{Namespace: ns, Resources: []kube.Resource{kube.Pods}}, sink)
	if err == nil {
		mk("web-1") // the first record, and the sink's failure
		mk("web-2") // after it: must not reach the sink
		err = w.Wait()
	}
	if !errors.Is(err, full) {
		t.Fatalf("err = %v, want the sink's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("sink called %d times, want 1: nothing is sent after its error", calls)
	}
}

func discard(*timeline.Record) error { return nil }
