package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/observe/kube"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
)

func TestMain(m *testing.M) {
	kubelettest.Main()
	os.Exit(controlplane.RunTests(m, controlplane.TestOptions))
}

// scale shrinks pod durations: a 30 s grace period takes 3 s.
const scale = kubelet.TimeScale(0.1)

// patience bounds every wait for the cluster to converge; it is a liveness
// bound on two busy shared cores, not a speed assertion.
const patience = 120 * time.Second

const gate = corev1.PodConditionType("target-health.elbv2.k8s.aws/k8s-web-tg")

// lab is one test's node agent, namespace and events directory.
type lab struct {
	t      *testing.T
	cp     *controlplane.ControlPlane
	cs     kubernetes.Interface
	agent  *Agent
	ns     string
	node   string
	port   int
	events string
	sink   *recSink
}

func newLab(t *testing.T, first netip.Addr) *lab {
	t.Helper()
	cp := controlplane.ForTest(t)
	cs, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := cp.TestNamespace(t, "nodeagent-")
	port, err := kubelettest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, cp: cp, cs: cs, ns: ns, node: "node-" + ns, port: port, events: t.TempDir(), sink: &recSink{}}
	l.agent, err = Start(ctx, Options{Config: cp.Config(), NodeName: l.node, Port: port,
		Command: kubelettest.Command(), Scale: scale, Sink: l.sink.Add, FirstIP: first})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.agent.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent records:\n%s", l.sink.dump())
			t.Logf("control plane logs:\n%s", cp.Logs())
		}
	})
	return l
}

// podTemplate is the test server: ready at once, exits on SIGTERM, writes
// its events (and its preStop hook's) to <events>/<pod name>.
func (l *lab) podTemplate(labels map[string]string, version string) corev1.PodTemplateSpec {
	grace := int64(30)
	env := []corev1.EnvVar{
		{Name: "MY_POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "VERSION", Value: version},
	}
	env = append(env, kubelettest.Server{Events: filepath.Join(l.events, "$(MY_POD_NAME)")}.Env()...)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			// Pinned to this test's node: other tests' nodes may be registered too.
			NodeSelector:                  map[string]string{corev1.LabelHostname: l.node},
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: "rollsafe/testserver", Env: env,
				Ports: []corev1.ContainerPort{{ContainerPort: int32(l.port)}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(int32(l.port))}}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{
					"sh", "-c", `echo "prestop $(date +%s%N) $$" >> "$TS_EVENTS"; sleep 0.3`}}}},
			}},
		},
	}
}

func (l *lab) deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}},
			Template: l.podTemplate(labels, "v1"),
		},
	}
	d, err := l.cs.AppsV1().Deployments(l.ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

// rolledOut is `kubectl rollout status`: the controller saw the newest
// template and every replica is updated and available.
func (l *lab) waitRolledOut(name string) *appsv1.Deployment {
	l.t.Helper()
	var d *appsv1.Deployment
	l.waitFor("deployment "+name+" rolled out", func(ctx context.Context) (bool, error) {
		var err error
		d, err = l.cs.AppsV1().Deployments(l.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := *d.Spec.Replicas
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want &&
			s.AvailableReplicas == want && s.UnavailableReplicas == 0, nil
	})
	return d
}

func (l *lab) waitFor(what string, cond func(ctx context.Context) (bool, error)) {
	l.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, patience, true, cond)
	if err != nil {
		l.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// pods lists the namespace's pods that are not terminating.
func (l *lab) pods(ctx context.Context, selector string) ([]corev1.Pod, error) {
	list, err := l.cs.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitReadyPods waits until exactly n pods match selector, none of them
// terminating and each Running and Ready, and returns them.
func (l *lab) waitReadyPods(selector string, n int) []corev1.Pod {
	l.t.Helper()
	var pods []corev1.Pod
	l.waitFor(fmt.Sprintf("%d ready pods %s", n, selector), func(ctx context.Context) (bool, error) {
		list, err := l.cs.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = list.Items
		for i := range pods {
			p := &pods[i]
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionTrue {
				return false, nil
			}
		}
		return len(pods) == n, nil
	})
	return pods
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	return kube.ConditionStatus(p, t)
}

// pid reads the process id the agent wrote into the container status.
func pid(t *testing.T, p *corev1.Pod) int {
	t.Helper()
	if len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("pod %s: container statuses %+v", p.Name, p.Status.ContainerStatuses)
	}
	id, ok := strings.CutPrefix(p.Status.ContainerStatuses[0].ContainerID, "rollsafe://")
	n, err := strconv.Atoi(id)
	if !ok || err != nil || n <= 0 {
		t.Fatalf("pod %s: container ID %q is not rollsafe://<pid>", p.Name, p.Status.ContainerStatuses[0].ContainerID)
	}
	return n
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b))
}

// recSink keeps the records the agent and its pods wrote.
type recSink struct{ testutil.Records }

func (s *recSink) dump() string {
	var b strings.Builder
	for _, r := range s.All() {
		fmt.Fprintf(&b, "%s %s %s %s %s %v\n", r.Time.Format("15:04:05.000"), r.Kind, r.Object, r.State, r.Reason, r.Attrs)
	}
	return b.String()
}

func (s *recSink) warnings() []string {
	var out []string
	for _, r := range s.All() {
		if r.State == string(kubelet.StateWarning) {
			out = append(out, r.Object+": "+r.Reason)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// createPod creates a pod named name from tmpl with no controller behind it.
func (l *lab) createPod(name string, tmpl corev1.PodTemplateSpec) {
	l.t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	if _, err := l.cs.CoreV1().Pods(l.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

// deletePod deletes pod name with opts and waits until its object is gone.
func (l *lab) deletePod(name string, opts metav1.DeleteOptions) {
	l.t.Helper()
	if err := l.cs.CoreV1().Pods(l.ns).Delete(context.Background(), name, opts); err != nil {
		l.t.Fatal(err)
	}
	l.waitPodGone(name)
}

// waitPodGone waits until pod name's object is no longer in the API.
func (l *lab) waitPodGone(name string) {
	l.t.Helper()
	l.waitFor("pod "+name+"'s object gone", func(ctx context.Context) (bool, error) {
		_, err := l.cs.CoreV1().Pods(l.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// waitPod waits until pod name satisfies ok and returns it.
func (l *lab) waitPod(name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	l.t.Helper()
	var p *corev1.Pod
	l.waitFor("pod "+name+" "+what, func(ctx context.Context) (bool, error) {
		var err error
		p, err = l.cs.CoreV1().Pods(l.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ok(p), nil
	})
	return p
}

func controlplaneConfig(t *testing.T) *rest.Config {
	t.Helper()
	return controlplane.ForTest(t).Config()
}
