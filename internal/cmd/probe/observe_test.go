package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/alb/elbv2api"
	"github.com/rollsafe/rollsafe/observe/awstest"
	"github.com/rollsafe/rollsafe/observe/kube"
	"github.com/rollsafe/rollsafe/timeline"
)

// The --kube tests run against a real kube-apiserver + etcd (+ controller
// manager) on loopback; no kubelet runs, so the test writes pod status as a
// kubelet would. The --target-group-arn tests run the real aws-sdk-go-v2
// client against the lab's ELBv2 API over a running lab load balancer: AWS
// itself is the only thing replaced.
func TestMain(m *testing.M) {
	clitest.ActAsChild() // TestSIGTERMFlushesEverything's process
	os.Exit(controlplane.RunTests(m, controlplane.TestOptions))
}

// counting is a loopback server that counts the requests it answers.
func counting(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(ts.Close)
	return ts, &n
}

func readAll(t *testing.T, path string) []timeline.Record {
	t.Helper()
	var recs []timeline.Record
	if err := timeline.ReadFile(path, func(r *timeline.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// waitUntil polls cond; the bound only keeps a broken run from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func kubeSetup(t *testing.T) (*controlplane.ControlPlane, *kubernetes.Clientset, string) {
	t.Helper()
	cp := controlplane.ForTest(t)
	cs := kubernetes.NewForConfigOrDie(cp.Config())
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-kube-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cp, cs, ns.Name
}

// probe --kube records the selected pods beside the requests in one file:
// the pod's initial state, then a change made while traffic flows, with
// requests on both sides of it; an unselected pod stays out.
func TestProbeKubeRecordsPodsBesideRequests(t *testing.T) {
	cp, cs, ns := kubeSetup(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cp.Config(), ns); err != nil {
		t.Fatal(err)
	}
	pod := func(app string) *corev1.Pod {
		p, err := cs.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: app + "-", Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "demo"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	web, other := pod("web"), pod("other")

	// An independent watch tells the test when the change has reached the
	// watch stream; the probe's own watch sees the same stream.
	wctx, wcancel := context.WithCancel(t.Context())
	defer wcancel()
	var changed atomic.Bool
	_, err := kube.Start(wctx, cs, kube.Options{Namespace: ns, Selector: "app=web", Resources: []kube.Resource{kube.Pods}},
		func(r *timeline.Record) error {
			if r.Reason != "initial" && r.Object == web.Name {
				changed.Store(true)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	ts, served := counting(t)
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	var code int
	var errOut string
	go func() {
		defer close(done)
		code, _, errOut = clitest.Run(ctx, "", "probe", ts.URL, "--rate", "100", "--duration", "2m", "--record", rec,
			"--kube", "--kubeconfig", kubeconfig, "--selector", "app=web")
	}()
	waitUntil(t, "traffic", func() bool { return served.Load() >= 5 })
	patch := `{"status":{"phase":"Running","podIP":"127.0.0.77","conditions":[{"type":"Ready","status":"True"},{"type":"ContainersReady","status":"True"}]}}`
	if _, err := cs.CoreV1().Pods(ns).Patch(t.Context(), web.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the change on the watch stream", changed.Load)
	n := served.Load()
	waitUntil(t, "traffic after the change", func() bool { return served.Load() >= n+20 })
	cancel() // as Ctrl-C: the probe stops, the watch with it, the file is flushed
	<-done
	if code != cmdutil.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}

	var reqs, webRecs int
	var changeAt time.Time
	var before, after int
	recs := readAll(t, rec)
	for _, r := range recs {
		switch {
		case r.Kind == timeline.KindRequest:
			reqs++
		case r.Kind == timeline.KindPod && r.Object == other.Name:
			t.Errorf("unselected pod recorded: %+v", r)
		case r.Kind == timeline.KindPod && r.Object == web.Name:
			webRecs++
			if r.Reason != "initial" && changeAt.IsZero() {
				changeAt = r.Time
			}
		}
	}
	if webRecs < 2 || changeAt.IsZero() {
		t.Fatalf("want the initial and the changed state of %s; records:\n%v", web.Name, recs)
	}
	for _, r := range recs {
		if r.Kind == timeline.KindRequest {
			if r.Time.Before(changeAt) {
				before++
			} else {
				after++
			}
		}
	}
	if reqs < 25 || before == 0 || after == 0 {
		t.Errorf("%d requests, %d before the pod change, %d after: want both sides", reqs, before, after)
	}
}

// An identity with no permissions: one line naming the refusal, exit 3 as
// in soak and check --live (cmdutil.Code), nothing sent, no record file
// left behind.
func TestProbeKubeForbiddenBeforeTraffic(t *testing.T) {
	cp, _, ns := kubeSetup(t)
	cfg, err := cp.ServiceAccount(t.Context(), ns, "nobody", nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cfg, ns); err != nil {
		t.Fatal(err)
	}
	ts, served := counting(t)
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	code, _, errOut := clitest.Run(t.Context(), "", "probe", ts.URL, "--requests", "5", "--record", rec, "--kube", "--kubeconfig", kubeconfig)
	if code != cmdutil.ExitRuntime || !strings.Contains(errOut, "forbidden") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("exit %d, stderr %q: want 3 and one line saying forbidden", code, errOut)
	}
	if served.Load() != 0 {
		t.Errorf("%d requests sent before the error", served.Load())
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("record file left behind: %v", err)
	}
}

// labTargetGroup is a lab load balancer with one registered backend on
// loopback, and its ELBv2 API.
func labTargetGroup(t *testing.T) (*alb.LB, *elbv2api.Server, alb.Target) {
	t.Helper()
	backend, _ := counting(t)
	cfg := alb.DefaultConfig()
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.Nodes = 1
	lb, err := alb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	api := elbv2api.New(lb, elbv2api.Options{TimeScale: 0.001})
	if err := api.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	addr := backend.Listener.Addr().(*net.TCPAddr)
	target := alb.Target{IP: addr.IP.String(), Port: addr.Port}
	if err := lb.Register(target); err != nil {
		t.Fatal(err)
	}
	return lb, api, target
}

func TestProbeTargetGroupRecordsTargets(t *testing.T) {
	awstest.Env(t, "eu-west-1")
	lb, api, target := labTargetGroup(t)
	ts, _ := counting(t)
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	code, _, errOut := clitest.Run(t.Context(), "", "probe", ts.URL, "--requests", "30", "--rate", "100", "--record", rec,
		"--target-group-arn", lb.TargetGroupARN(), "--aws-endpoint", api.URL(), "--poll-interval", "20ms")
	if code != cmdutil.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	key := net.JoinHostPort(target.IP, strconv.Itoa(target.Port))
	var reqs, targets int
	for _, r := range readAll(t, rec) {
		switch r.Kind {
		case timeline.KindRequest:
			reqs++
		case timeline.KindTarget:
			if r.Object != key || r.Source != "elbv2" || r.State == "" || r.Attrs["target_group"] != lb.TargetGroupARN() {
				t.Errorf("target record %+v, want object %s from elbv2", r, key)
			}
			targets++
		}
	}
	if reqs != 30 || targets == 0 {
		t.Errorf("%d requests and %d target records; want 30 and at least one", reqs, targets)
	}
}

// A target group the API does not know: one line, exit 2, nothing sent.
func TestProbeTargetGroupBadARNBeforeTraffic(t *testing.T) {
	awstest.Env(t, "eu-west-1")
	lb, api, _ := labTargetGroup(t)
	bad := strings.Replace(lb.TargetGroupARN(), "targetgroup/", "targetgroup/nope-", 1)
	ts, served := counting(t)
	rec := filepath.Join(t.TempDir(), "run.ndjson")
	code, _, errOut := clitest.Run(t.Context(), "", "probe", ts.URL, "--requests", "5", "--record", rec,
		"--target-group-arn", bad, "--aws-endpoint", api.URL())
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "--target-group-arn") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("exit %d, stderr %q: want 2 and one line", code, errOut)
	}
	if served.Load() != 0 {
		t.Errorf("%d requests sent before the error", served.Load())
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("record file left behind: %v", err)
	}
}

// Without --record the timelines would go nowhere: refused up front.
func TestProbeObserversNeedRecord(t *testing.T) {
	ts, served := counting(t)
	code, _, errOut := clitest.Run(t.Context(), "", "probe", ts.URL, "--requests", "5", "--target-group-arn", "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/1")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "give --record") || served.Load() != 0 {
		t.Errorf("exit %d, stderr %q, %d sent", code, errOut, served.Load())
	}
}
