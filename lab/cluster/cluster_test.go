package cluster_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/lab/cluster"
	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
	"github.com/rollsafe/rollsafe/timeline"
)

const (
	scale = kubelet.TimeScale(0.05)
	limit = 60 * time.Second // liveness bound for a whole rollout, never a speed assertion
	gate  = corev1.PodConditionType("target-health.elbv2.k8s.aws/lab-tg")
)

func TestMain(m *testing.M) {
	kubelettest.Main()
	os.Exit(m.Run())
}

// recorder keeps every record the cluster writes.
type recorder = testutil.Records

var ipBlock struct {
	sync.Mutex
	n int
}

// firstIP gives each cluster in this test process its own /24.
func firstIP() netip.Addr {
	ipBlock.Lock()
	defer ipBlock.Unlock()
	ipBlock.n++
	return netip.AddrFrom4([4]byte{127, 0, byte(100 + (os.Getpid()+ipBlock.n*7)%90), 1})
}

// newCluster runs a cluster whose OnPod plays the load-balancer controller:
// it sets the readiness gate a little after the containers are ready.
func newCluster(t *testing.T, ctx context.Context, sink timeline.Sink) *cluster.Cluster {
	t.Helper()
	port, err := kubelettest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var c *cluster.Cluster
	c, err = cluster.New(ctx, cluster.Options{
		Port: port, Scale: scale, Sink: sink, FirstIP: firstIP(),
		OnPod: func(ev cluster.PodEvent) {
			if ev.Change == kubelet.StateContainersReady {
				name := ev.Pod.Name
				time.AfterFunc(scale.Seconds(1), func() { _ = c.SetCondition(name, gate, corev1.ConditionTrue) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func deployment(name string, replicas int32, surge, unavailable intstr.IntOrString, version string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "lab"},
		Spec: appsv1.DeploymentSpec{
			Replicas:        &replicas,
			MinReadySeconds: 2, // 100 ms
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
			Template: template(version),
		},
	}
}

func template(version string) corev1.PodTemplateSpec {
	grace := int64(10)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "demo"}, Annotations: map[string]string{"version": version}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			ReadinessGates:                []corev1.PodReadinessGate{{ConditionType: gate}},
			Containers: []corev1.Container{{
				Name: "app", Command: kubelettest.Command(), Env: kubelettest.Server{ReadyAfter: 150 * time.Millisecond}.Env(),
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 1325}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1,
					ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 4}}},
			}},
		},
	}
}

// podTimes is what the records say about one pod.
type podTimes struct {
	created, terminating time.Time
	readyAt              []time.Time // Ready transitions
	notReadyAt           []time.Time
	ip                   string
	gone                 time.Time
}

func timesOf(recs []timeline.Record) map[string]*podTimes {
	pods := map[string]*podTimes{}
	for _, r := range recs {
		p := pods[r.Object]
		if p == nil {
			p = &podTimes{ip: r.Attrs["ip"]}
			pods[r.Object] = p
		}
		switch kubelet.State(r.State) {
		case kubelet.StatePending:
			p.created = r.Time
		case kubelet.StateTerminating:
			p.terminating = r.Time
		case kubelet.StateReady:
			p.readyAt = append(p.readyAt, r.Time)
		case kubelet.StateNotReady:
			p.notReadyAt = append(p.notReadyAt, r.Time)
		case kubelet.StateDeleted:
			p.gone = r.Time
		}
	}
	return pods
}

// at reports whether the pod exists (not terminating) and is available at t.
func (p *podTimes) at(t time.Time, minReady time.Duration) (exists, available bool) {
	if p.created.IsZero() || p.created.After(t) || (!p.terminating.IsZero() && !p.terminating.After(t)) {
		return false, false
	}
	var lastReady, lastNotReady time.Time
	for _, r := range p.readyAt {
		if !r.After(t) {
			lastReady = r
		}
	}
	for _, r := range p.notReadyAt {
		if !r.After(t) {
			lastNotReady = r
		}
	}
	return true, !lastReady.IsZero() && lastReady.After(lastNotReady) && !lastReady.Add(minReady).After(t)
}

func TestRollingUpdateRespectsSurgeAndUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name                string
		replicas            int32
		surge, unavailable  intstr.IntOrString
		wantMax, wantMinAvl int
	}{
		{"surge1-unavailable1", 4, intstr.FromInt32(1), intstr.FromInt32(1), 5, 3},
		// 25% of 3: surge rounds up to 1, unavailable rounds down to 0.
		{"percent-25", 3, intstr.FromString("25%"), intstr.FromString("25%"), 4, 3},
		{"surge0-unavailable2", 4, intstr.FromInt32(0), intstr.FromInt32(2), 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := newCluster(t, context.Background(), rec.Add)
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			d := createAndWait(t, ctx, c, deployment("web", tc.replicas, tc.surge, tc.unavailable, "v1"))
			before := d.PodNames()
			start := time.Now()
			if err := d.Rollout(ctx, template("v2")); err != nil {
				t.Fatal(err)
			}
			st := d.Status()
			if !st.Complete || st.UpdatedReplicas != tc.replicas || st.AvailableReplicas != tc.replicas {
				t.Fatalf("Rollout returned with status %+v", st)
			}
			after := d.PodNames()
			for _, old := range before {
				for _, n := range after {
					if n == old {
						t.Errorf("old pod %s still active after the rollout", old)
					}
				}
			}

			recs := rec.All()
			pods := timesOf(recs)
			minReady := scale.Seconds(2)
			maxPods, minAvail := 0, int(tc.replicas)
			for _, r := range recs {
				if r.Time.Before(start) {
					continue
				}
				total, avail := 0, 0
				for _, p := range pods {
					e, a := p.at(r.Time, minReady)
					if e {
						total++
					}
					if a {
						avail++
					}
				}
				maxPods, minAvail = max(maxPods, total), min(minAvail, avail)
			}
			t.Logf("replicas %d: max pods %d, min available %d, pods %d", tc.replicas, maxPods, minAvail, len(pods))
			if maxPods > tc.wantMax {
				t.Errorf("max pods (not terminating) = %d, want <= replicas+maxSurge = %d", maxPods, tc.wantMax)
			}
			if minAvail < tc.wantMinAvl {
				t.Errorf("min available = %d, want >= replicas-maxUnavailable = %d", minAvail, tc.wantMinAvl)
			}
			if len(pods) != 2*int(tc.replicas) {
				t.Errorf("%d pods ran, want %d (one per replica per revision)", len(pods), 2*tc.replicas)
			}
			checkNamesAndIPs(t, pods, st.Revision)
		})
	}
}

var podName = regexp.MustCompile(`^web-[bcdfghjklmnpqrstvwxz2456789]+-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

func checkNamesAndIPs(t *testing.T, pods map[string]*podTimes, revision string) {
	t.Helper()
	newPods := 0
	for name, p := range pods {
		if !podName.MatchString(name) {
			t.Errorf("pod name %q is not <deploy>-<hash>-<rand5>", name)
		}
		if strings.HasPrefix(name, "web-"+revision+"-") {
			newPods++
		}
		ip := netip.MustParseAddr(p.ip)
		if b := ip.As4(); b[0] != 127 || b[1] != 0 || b[3] == 0 || b[3] == 255 {
			t.Errorf("pod %s has IP %s, want 127.0.x.y", name, ip)
		}
		for other, q := range pods {
			if other != name && q.ip == p.ip && lifetimesOverlap(p, q) {
				t.Errorf("pods %s and %s share IP %s while both exist", name, other, p.ip)
			}
		}
	}
	if newPods == 0 {
		t.Errorf("no pod carries the new revision %s", revision)
	}
}

func lifetimesOverlap(a, b *podTimes) bool {
	end := func(p *podTimes) time.Time {
		if p.gone.IsZero() {
			return time.Now()
		}
		return p.gone
	}
	return a.created.Before(end(b)) && b.created.Before(end(a))
}

func TestRolloutWaitsForGateAndDeletesThroughKubelet(t *testing.T) {
	rec := &recorder{}
	c := newCluster(t, context.Background(), rec.Add)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	d := createWeb(t, ctx, c)
	if err := d.Rollout(ctx, template("v2")); err != nil {
		t.Fatal(err)
	}
	// Rollout returns once old pods are deleted, not exited: wait for them.
	deadline := time.Now().Add(limit)
	for len(c.Pods()) > 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(c.Pods()); n != 2 {
		t.Errorf("%d pods left after the old ones terminated, want 2", n)
	}
	recs := rec.All()
	// Every old pod went through preStop before SIGTERM, and no pod was
	// Ready before its gate was set.
	for name, p := range timesOf(recs) {
		var gateAt time.Time
		var states []string
		for _, r := range recs {
			if r.Object != name {
				continue
			}
			states = append(states, r.State)
			if r.State == string(kubelet.StateCondition) && gateAt.IsZero() {
				gateAt = r.Time
			}
		}
		if len(p.readyAt) == 0 || gateAt.IsZero() || p.readyAt[0].Before(gateAt) {
			t.Errorf("pod %s: Ready %v, gate set %v", name, p.readyAt, gateAt)
		}
		if !p.terminating.IsZero() && !inOrder(states, "Terminating", "PreStop", "PreStopDone", "SIGTERM") {
			t.Errorf("pod %s terminated without preStop before SIGTERM: %v", name, states)
		}
	}
}

// A sink that fails gets nothing more from any pod, and Err says why.
func TestSinkErrorIsKept(t *testing.T) {
	boom := errors.New("disk full")
	var calls atomic.Int64
	c := newCluster(t, context.Background(), func(*timeline.Record) error {
		if calls.Add(1) == 3 {
			return boom
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	createWeb(t, ctx, c)
	c.Close()
	if !errors.Is(c.Err(), boom) {
		t.Errorf("Err() = %v, want disk full", c.Err())
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the sink got %d records, want 3 (none after its error)", n)
	}
}

// createWeb creates the two-replica deployment "web" (surge 1, none
// unavailable) and waits within ctx until it is available.
func createWeb(t *testing.T, ctx context.Context, c *cluster.Cluster) *cluster.Deployment {
	t.Helper()
	return createAndWait(t, ctx, c, deployment("web", 2, intstr.FromInt32(1), intstr.FromInt32(0), "v1"))
}

// createAndWait creates dep and waits within ctx until it is available.
func createAndWait(t *testing.T, ctx context.Context, c *cluster.Cluster, dep *appsv1.Deployment) *cluster.Deployment {
	t.Helper()
	d, err := c.CreateDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitComplete(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func inOrder(states []string, want ...string) bool {
	i := 0
	for _, s := range states {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestNoProcessLeftAfterCloseOrCancel(t *testing.T) {
	for _, how := range []string{"Close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			rec := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newCluster(t, ctx, rec.Add)
			wctx, wcancel := context.WithTimeout(context.Background(), limit)
			defer wcancel()
			d := createAndWait(t, wctx, c, deployment("web", 3, intstr.FromInt32(1), intstr.FromInt32(1), "v1"))
			// Start a rollout and stop the lab in the middle of it.
			go func() { _ = d.Rollout(wctx, template("v2")) }()
			time.Sleep(scale.Seconds(4))
			var pids []int
			for _, p := range c.Pods() {
				if kp, ok := c.Pod(p.Name); ok && kp.Pid() > 0 {
					pids = append(pids, kp.Pid())
				}
			}
			if len(pids) == 0 {
				t.Fatal("no running pod to check")
			}
			if how == "Close" {
				c.Close()
			} else {
				cancel()
				c.Close() // returns once every pod is gone
			}
			for _, pid := range pids {
				if !kubelettest.WaitGone(pid, limit) {
					t.Errorf("pod process %d survived %s", pid, how)
				}
			}
			if n := len(c.Pods()); n != 0 {
				t.Errorf("%d pods still known after %s", n, how)
			}
		})
	}
}

func TestBadDeployments(t *testing.T) {
	rec := &recorder{}
	c := newCluster(t, context.Background(), rec.Add)
	zero := deployment("zero", 2, intstr.FromInt32(0), intstr.FromInt32(0), "v1")
	badPct := deployment("pct", 2, intstr.FromString("abc%"), intstr.FromInt32(0), "v1")
	two := deployment("two", 2, intstr.FromInt32(1), intstr.FromInt32(0), "v1")
	two.Spec.Template.Spec.Containers = append(two.Spec.Template.Spec.Containers, two.Spec.Template.Spec.Containers[0])
	strat := deployment("strat", 2, intstr.FromInt32(1), intstr.FromInt32(0), "v1")
	strat.Spec.Strategy.Type = "BlueGreen"
	for _, tc := range []struct {
		d    *appsv1.Deployment
		want string
	}{
		{zero, "maxUnavailable may not be 0 when maxSurge is 0"},
		{badPct, "maxSurge"},
		{two, "2 containers"},
		{strat, "BlueGreen"},
	} {
		if _, err := c.CreateDeployment(tc.d); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.d.Name) {
			t.Errorf("%s: err = %v, want one naming it and %q", tc.d.Name, err, tc.want)
		}
	}

	// A binary that does not exist fails the rollout with a clear error
	// and leaves no pod behind.
	missing := deployment("missing", 2, intstr.FromInt32(1), intstr.FromInt32(0), "v1")
	missing.Spec.Template.Spec.Containers[0].Command = []string{"/nonexistent/app"}
	d, err := c.CreateDeployment(missing)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := d.WaitComplete(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/app") {
		t.Errorf("WaitComplete = %v, want the start error", err)
	}
	if n := len(c.Pods()); n != 0 {
		t.Errorf("%d pods after a failed start", n)
	}
}

func TestProgressDeadline(t *testing.T) {
	rec := &recorder{}
	c := newCluster(t, context.Background(), rec.Add)
	dep := deployment("stuck", 1, intstr.FromInt32(1), intstr.FromInt32(0), "v1")
	deadline := int32(20) // 1 s
	dep.Spec.ProgressDeadlineSeconds = &deadline
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	d := createAndWait(t, ctx, c, dep)
	never := template("v2")
	never.Spec.Containers[0].Env = kubelettest.Server{ReadyAfter: time.Hour}.Env()
	if err := d.Rollout(ctx, never); err == nil || !strings.Contains(err.Error(), "progress deadline") {
		t.Errorf("Rollout of a never-ready template = %v, want progress deadline exceeded", err)
	}
	// maxUnavailable 0: the old pod must still serve.
	if st := d.Status(); st.AvailableReplicas != 1 {
		t.Errorf("available = %d during a stuck rollout with maxUnavailable 0", st.AvailableReplicas)
	}
}

func TestRecreateDeletesBeforeCreating(t *testing.T) {
	rec := &recorder{}
	c := newCluster(t, context.Background(), rec.Add)
	dep := deployment("web", 2, intstr.FromInt32(1), intstr.FromInt32(0), "v1")
	dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	d := createAndWait(t, ctx, c, dep)
	start := time.Now()
	if err := d.Rollout(ctx, template("v2")); err != nil {
		t.Fatal(err)
	}
	var lastGone, firstNew time.Time
	for name, p := range timesOf(rec.All()) {
		if p.created.Before(start) {
			if p.gone.After(lastGone) {
				lastGone = p.gone
			}
		} else if firstNew.IsZero() || p.created.Before(firstNew) {
			firstNew = p.created
		}
		_ = name
	}
	if lastGone.IsZero() || firstNew.Before(lastGone) {
		t.Errorf("Recreate: first new pod at %v, last old pod gone at %v", firstNew, lastGone)
	}
}
