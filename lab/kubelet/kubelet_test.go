package kubelet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
	"github.com/rollsafe/rollsafe/timeline"
)

// scale shrinks the spec's seconds: periodSeconds 2 → 100 ms.
const scale = kubelet.TimeScale(0.05)

// limit bounds every wait for something that must happen; it is a liveness
// bound, never a speed assertion.
const limit = 30 * time.Second

const envParent = "KUBELET_TEST_PARENT"

func TestMain(m *testing.M) {
	kubelettest.Main()
	if os.Getenv(envParent) != "" {
		parentHelper()
		return
	}
	os.Exit(m.Run())
}

// parentHelper runs one pod and then waits to be killed: the test SIGKILLs
// this process and checks that the pod died with it.
func parentHelper() {
	port, _ := strconv.Atoi(os.Getenv("KUBELET_TEST_PORT"))
	p, err := kubelet.Start(context.Background(), kubelet.Options{
		Pod: testPod("orphan", kubelettest.Server{Fork: true, Events: os.Getenv("KUBELET_TEST_EVENTS")}),
		IP:  os.Getenv(envParent), Port: port, Scale: scale,
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", p.Pid())
	select {}
}

// recorder's Write is a timeline.Sink that keeps every record and lets
// tests wait for states.
type recorder struct {
	mu   sync.Mutex
	recs []timeline.Record
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) Write(rec *timeline.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, *rec)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) all() []timeline.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]timeline.Record(nil), r.recs...)
}

func (r *recorder) find(state kubelet.State) (timeline.Record, bool) {
	for _, rec := range r.all() {
		if rec.State == string(state) {
			return rec, true
		}
	}
	return timeline.Record{}, false
}

func (r *recorder) wait(t *testing.T, state kubelet.State) timeline.Record {
	t.Helper()
	deadline := time.After(limit)
	for {
		if rec, ok := r.find(state); ok {
			return rec
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no %s record within %v; got %v", state, limit, r.states())
		}
	}
}

func (r *recorder) states() []string {
	var s []string
	for _, rec := range r.all() {
		s = append(s, rec.State)
	}
	return s
}

func testPod(name string, s kubelettest.Server) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "lab"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Command: kubelettest.Command(), Env: s.Env(),
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

func readinessProbe(initialDelay, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
		InitialDelaySeconds: initialDelay, PeriodSeconds: period,
	}
}

var ipSeq struct {
	sync.Mutex
	n int
}

// podIP gives each test its own loopback address.
func podIP() string {
	ipSeq.Lock()
	defer ipSeq.Unlock()
	ipSeq.n++
	return fmt.Sprintf("127.0.%d.%d", 200+os.Getpid()%50, ipSeq.n)
}

type env struct {
	rec    *recorder
	events string
	ip     string
	port   int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	port, err := kubelettest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return &env{rec: newRecorder(), events: filepath.Join(t.TempDir(), "events"), ip: podIP(), port: port}
}

func (e *env) start(t *testing.T, ctx context.Context, pod *corev1.Pod) *kubelet.Pod {
	t.Helper()
	p, err := kubelet.Start(ctx, kubelet.Options{Pod: pod, IP: e.ip, Port: e.port, Scale: scale, Sink: e.rec.Write})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (e *env) events_(t *testing.T) []kubelettest.Event {
	t.Helper()
	ev, err := kubelettest.ReadEvents(e.events)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func mustEvent(t *testing.T, ev []kubelettest.Event, name string) kubelettest.Event {
	t.Helper()
	e, ok := kubelettest.Find(ev, name)
	if !ok {
		t.Fatalf("server events have no %q: %+v", name, ev)
	}
	return e
}

func waitDone(t *testing.T, p *kubelet.Pod) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(limit):
		t.Fatalf("pod %s not gone within %v", p.Name(), limit)
	}
}

func TestReadinessProbeGatesContainersReady(t *testing.T) {
	e := newEnv(t)
	readyAfter := 400 * time.Millisecond
	pod := testPod("probe", kubelettest.Server{ReadyAfter: readyAfter, Events: e.events})
	pod.Spec.Containers[0].ReadinessProbe = readinessProbe(4, 2) // 200 ms delay, 100 ms period
	p := e.start(t, context.Background(), pod)

	ready := e.rec.wait(t, kubelet.StateContainersReady)
	podReady := e.rec.wait(t, kubelet.StateReady)
	running, _ := e.rec.find(kubelet.StateRunning)
	start := mustEvent(t, e.events_(t), "start")

	// The server refused readiness for readyAfter: no probe can have passed before.
	if got := ready.Time.Sub(start.Time); got < readyAfter {
		t.Errorf("ContainersReady %v after the server started; the server was not ready for %v", got, readyAfter)
	}
	if got := ready.Time.Sub(running.Time); got < scale.Seconds(4) {
		t.Errorf("ContainersReady %v after start, before initialDelaySeconds (%v)", got, scale.Seconds(4))
	}
	if podReady.Time.Before(ready.Time) {
		t.Error("Ready before ContainersReady")
	}
	st := p.Status()
	if st.Status.Phase != corev1.PodRunning || !st.Status.ContainerStatuses[0].Ready || st.Status.PodIP != e.ip {
		t.Errorf("status: phase %s ready %v ip %s", st.Status.Phase, st.Status.ContainerStatuses[0].Ready, st.Status.PodIP)
	}
}

func TestNoReadinessProbeIsReadyWhenRunning(t *testing.T) {
	e := newEnv(t)
	e.start(t, context.Background(), testPod("noprobe", kubelettest.Server{}))
	e.rec.wait(t, kubelet.StateReady)
}

// A sink that fails gets nothing more, and Err says why; the pod runs on.
func TestSinkErrorIsKept(t *testing.T) {
	e := newEnv(t)
	boom := errors.New("disk full")
	var calls atomic.Int64
	sink := func(*timeline.Record) error {
		if calls.Add(1) == 2 {
			return boom
		}
		return nil
	}
	p, err := kubelet.Start(context.Background(), kubelet.Options{Pod: testPod("sinkfail", kubelettest.Server{}),
		IP: e.ip, Port: e.port, Scale: scale, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	p.Delete()
	waitDone(t, p)
	if !errors.Is(p.Err(), boom) {
		t.Errorf("Err() = %v, want disk full", p.Err())
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the sink got %d records, want 2 (none after its error)", n)
	}
	if ph := p.Status().Status.Phase; ph != corev1.PodSucceeded && ph != corev1.PodFailed {
		t.Errorf("phase %s: the pod did not run to its end", ph)
	}
}

func TestReadinessGateHoldsReady(t *testing.T) {
	e := newEnv(t)
	const gate = corev1.PodConditionType("target-health.elbv2.k8s.aws/tg")
	pod := testPod("gated", kubelettest.Server{})
	pod.Spec.Containers[0].ReadinessProbe = readinessProbe(0, 2)
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
	p := e.start(t, context.Background(), pod)

	e.rec.wait(t, kubelet.StateContainersReady)
	// Let a few probe periods pass: Ready must stay False while the gate is unset.
	time.Sleep(5 * scale.Seconds(2))
	if _, ok := e.rec.find(kubelet.StateReady); ok {
		t.Fatal("Ready with the readiness gate unset")
	}
	if c := condition(p.Status(), corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Fatalf("Ready condition = %+v, want False/ReadinessGatesNotReady", c)
	}
	if err := p.SetCondition(gate, corev1.ConditionFalse); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	if err := p.SetCondition(gate, corev1.ConditionTrue); err != nil {
		t.Fatal(err)
	}
	ready := e.rec.wait(t, kubelet.StateReady)
	if ready.Time.Before(set) {
		t.Errorf("Ready at %v, before the gate was set at %v", ready.Time, set)
	}
	if err := p.SetCondition(corev1.PodReady, corev1.ConditionTrue); err == nil {
		t.Error("setting the kubelet-owned Ready condition was accepted")
	}
	p.Delete()
	waitDone(t, p)
	if err := p.SetCondition(gate, corev1.ConditionTrue); err == nil {
		t.Error("SetCondition on a gone pod was accepted")
	}
}

func TestPreStopSleepRunsBeforeSIGTERM(t *testing.T) {
	e := newEnv(t)
	pod := testPod("sleepy", kubelettest.Server{Events: e.events})
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}}
	pod.Spec.Containers[0].ReadinessProbe = readinessProbe(0, 2)
	p := e.start(t, context.Background(), pod)
	e.rec.wait(t, kubelet.StateReady)

	p.Delete()
	waitDone(t, p)
	term, _ := e.rec.find(kubelet.StateTerminating)
	sigterm := mustEvent(t, e.events_(t), "sigterm")
	if got := sigterm.Time.Sub(term.Time); got < scale.Seconds(10) {
		t.Errorf("server got SIGTERM %v after deletion; preStop sleep is %v", got, scale.Seconds(10))
	}
	assertOrder(t, e.rec, kubelet.StateTerminating, kubelet.StatePreStop, kubelet.StatePreStopDone, kubelet.StateSIGTERM, kubelet.StateExited, kubelet.StateDeleted)
	if _, ok := e.rec.find(kubelet.StateKilled); ok {
		t.Error("killed although the server exited on SIGTERM within the grace period")
	}
	exited, _ := e.rec.find(kubelet.StateExited)
	if exited.Attrs["exit_code"] != "0" {
		t.Errorf("exit_code = %q, want 0", exited.Attrs["exit_code"])
	}
	if st := p.Status(); st.DeletionTimestamp == nil || st.Status.Phase != corev1.PodSucceeded {
		t.Errorf("final status: deletion %v phase %s", st.DeletionTimestamp, st.Status.Phase)
	}
}

func TestPreStopExecAndHTTPGet(t *testing.T) {
	for _, kind := range []string{"exec", "httpGet"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			pod := testPod("hook-"+strings.ToLower(kind), kubelettest.Server{Events: e.events})
			h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/prestop", Port: intstr.FromInt32(8080)}}
			name := "prestop-http"
			if kind == "exec" {
				h = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: kubelettest.HookCommand(e.events, "prestop-exec", 0.3)}}
				name = "prestop-exec-done"
			}
			pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: h}
			pod.Spec.Containers[0].ReadinessProbe = readinessProbe(0, 2) // Ready only once it serves
			p := e.start(t, context.Background(), pod)
			e.rec.wait(t, kubelet.StateReady)
			p.Delete()
			waitDone(t, p)
			ev := e.events_(t)
			hook, sigterm := mustEvent(t, ev, name), mustEvent(t, ev, "sigterm")
			if !hook.Time.Before(sigterm.Time) {
				t.Errorf("%s hook ended at %v, not before SIGTERM at %v", kind, hook.Time, sigterm.Time)
			}
			if done, _ := e.rec.find(kubelet.StatePreStopDone); done.Reason != "completed" {
				t.Errorf("PreStopDone reason %q", done.Reason)
			}
		})
	}
}

// preStop sleep 40 s with a 20 s grace period, server ignores SIGTERM: at
// the deadline it gets SIGTERM anyway, 2 s more, then SIGKILL.
func TestGracePeriodOverrunGetsExtensionThenSIGKILL(t *testing.T) {
	e := newEnv(t)
	pod := testPod("stubborn", kubelettest.Server{IgnoreSIGTERM: true, Events: e.events})
	grace := int64(20)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 40}}}
	pod.Spec.Containers[0].ReadinessProbe = readinessProbe(0, 2)
	p := e.start(t, context.Background(), pod)
	e.rec.wait(t, kubelet.StateReady)
	pid := p.Pid()

	p.Delete()
	waitDone(t, p)
	assertOrder(t, e.rec, kubelet.StateTerminating, kubelet.StatePreStop, kubelet.StatePreStopDone, kubelet.StateSIGTERM, kubelet.StateKilled, kubelet.StateExited, kubelet.StateDeleted)
	term, _ := e.rec.find(kubelet.StateTerminating)
	sig, _ := e.rec.find(kubelet.StateSIGTERM)
	killed, _ := e.rec.find(kubelet.StateKilled)
	exited, _ := e.rec.find(kubelet.StateExited)
	if sig.Attrs["extended"] != "true" || sig.Attrs["stop_window"] != scale.Of(2*time.Second).String() {
		t.Errorf("SIGTERM attrs %v, want the 2 s extension", sig.Attrs)
	}
	if got := sig.Time.Sub(term.Time); got < scale.Seconds(grace) {
		t.Errorf("SIGTERM %v after deletion, before the grace period %v ended", got, scale.Seconds(grace))
	}
	if got := killed.Time.Sub(sig.Time); got < scale.Of(2*time.Second) {
		t.Errorf("SIGKILL %v after SIGTERM, inside the 2 s extension", got)
	}
	if killed.Reason != "grace period exceeded" || exited.Attrs["exit_code"] != "137" {
		t.Errorf("killed reason %q exit_code %q, want grace period exceeded / 137", killed.Reason, exited.Attrs["exit_code"])
	}
	mustEvent(t, e.events_(t), "sigterm") // the server did get SIGTERM first
	if !kubelettest.ProcessGone(pid) {
		t.Error("process still there after SIGKILL")
	}
}

func TestCrashIsReportedAndReaped(t *testing.T) {
	e := newEnv(t)
	pod := testPod("crashy", kubelettest.Server{ExitAfter: 200 * time.Millisecond, ExitCode: 3})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p := e.start(t, context.Background(), pod)
	pid := p.Pid()
	exited := e.rec.wait(t, kubelet.StateExited)
	e.rec.wait(t, kubelet.StateFailed)
	if exited.Attrs["exit_code"] != "3" {
		t.Errorf("exit_code = %q, want 3", exited.Attrs["exit_code"])
	}
	// Reaped by us: not even a zombie is left.
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		t.Errorf("crashed pod process %d still in /proc (zombie?): %v", pid, err)
	}
	if st := p.Status(); st.Status.Phase != corev1.PodFailed || st.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
		t.Errorf("status phase %s", st.Status.Phase)
	}
	p.Delete()
	waitDone(t, p)
}

func TestCrashRestartsWithBackOff(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, context.Background(), testPod("crashloop", kubelettest.Server{ExitAfter: 100 * time.Millisecond, ExitCode: 1}))
	first := p.Pid()
	e.rec.wait(t, kubelet.StateBackOff)
	deadline := time.Now().Add(limit)
	for p.Status().Status.ContainerStatuses[0].RestartCount < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := p.Status().Status
	if st.ContainerStatuses[0].RestartCount < 1 || st.ContainerStatuses[0].LastTerminationState.Terminated == nil {
		t.Fatalf("not restarted: %+v", st.ContainerStatuses[0])
	}
	if pid := p.Pid(); pid == first {
		t.Errorf("restart kept pid %d", pid)
	}
}

func TestCloseKillsWholeGroup(t *testing.T) {
	for _, how := range []string{"Close", "ctx"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pod := testPod("group-"+strings.ToLower(how), kubelettest.Server{Fork: true, IgnoreSIGTERM: true, Events: e.events})
			pod.Spec.Containers[0].ReadinessProbe = readinessProbe(0, 2)
			p := e.start(t, ctx, pod)
			e.rec.wait(t, kubelet.StateReady)
			pid, child := p.Pid(), waitForked(t, e.events)
			if how == "Close" {
				p.Close()
			} else {
				cancel()
				waitDone(t, p)
			}
			for _, x := range []int{pid, child} {
				if !kubelettest.WaitGone(x, limit) {
					t.Errorf("process %d survived %s", x, how)
				}
			}
			if k, _ := e.rec.find(kubelet.StateKilled); k.State == "" {
				t.Error("no Killed record")
			}
		})
	}
}

func waitForked(t *testing.T, events string) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ev, _ := kubelettest.ReadEvents(events)
		if f, ok := kubelettest.Find(ev, "forked "); ok {
			pid, _ := strconv.Atoi(strings.TrimPrefix(f.Name, "forked "))
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server did not fork")
	return 0
}

// The parent (a helper process running a pod) is SIGKILLed: no cleanup code
// of ours runs, yet the pod's process must die (Pdeathsig).
func TestPodDiesWithParent(t *testing.T) {
	e := newEnv(t)
	helper := exec.Command(kubelettest.Command()[0])
	helper.Env = append(os.Environ(), envParent+"="+e.ip, "KUBELET_TEST_PORT="+strconv.Itoa(e.port), "KUBELET_TEST_EVENTS="+e.events)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pid ") {
		t.Fatalf("helper said %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	waitListening(t, e.ip, e.port)
	child := waitForked(t, e.events) // a grandchild: Pdeathsig alone would not reach it
	if kubelettest.ProcessGone(pid) {
		t.Fatal("pod process not running before the parent died")
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	for _, x := range []int{pid, child} {
		if !kubelettest.WaitGone(x, limit) {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", x))
			_ = syscall.Kill(x, syscall.SIGKILL) // don't leave it to the next run
			t.Errorf("pod process %d outlived its SIGKILLed parent: %s", x, stat)
		}
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(e.ip, strconv.Itoa(e.port)), time.Second); err == nil {
		t.Error("pod port still accepts connections after the parent died")
	}
}

func waitListening(t *testing.T, ip string, port int) {
	t.Helper()
	url := "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/"
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	missing := testPod("missing", kubelettest.Server{})
	missing.Spec.Containers[0].Command = []string{"/nonexistent/rollsafe-app"}
	two := testPod("two", kubelettest.Server{})
	two.Spec.Containers = append(two.Spec.Containers, two.Spec.Containers[0])
	grpc := testPod("grpc", kubelettest.Server{})
	grpc.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 1}}}
	for _, tc := range []struct {
		pod  *corev1.Pod
		ip   string
		want string
	}{
		{missing, e.ip, "/nonexistent/rollsafe-app"},
		{two, e.ip, "exactly one"},
		{grpc, e.ip, "readinessProbe.grpc"},
		{testPod("badip", kubelettest.Server{}), "not-an-ip", "bad pod IP"},
	} {
		_, err := kubelet.Start(context.Background(), kubelet.Options{Pod: tc.pod, IP: tc.ip, Port: e.port, Sink: e.rec.Write})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.pod.Name) {
			t.Errorf("%s: err = %v, want one naming the pod and %q", tc.pod.Name, err, tc.want)
		}
	}
	if recs := e.rec.all(); len(recs) != 0 {
		t.Errorf("failed starts left records: %v", e.rec.states())
	}
}

func TestEnvAndExpansion(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "env")
	pod := testPod("envy", kubelettest.Server{})
	c := &pod.Spec.Containers[0]
	c.Command = []string{"sh", "-c", "echo \"$0 $POD_NAME $POD_NAMESPACE $POD_IP $PORT $GREETING $MYIP\" > " + out, "$(GREETING)", "$$(GREETING)"}
	c.Env = []corev1.EnvVar{
		{Name: "NAME", Value: "lab"},
		{Name: "GREETING", Value: "hi-$(NAME)"},
		{Name: "MYIP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}},
	}
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p := e.start(t, context.Background(), pod)
	e.rec.wait(t, kubelet.StateSucceeded)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("hi-lab envy lab %s %d hi-lab %s\n", e.ip, e.port, e.ip)
	if string(b) != want {
		t.Errorf("child saw %q, want %q", b, want)
	}
	if w, ok := e.rec.find(kubelet.StateWarning); !ok || !strings.Contains(w.Reason, "SECRET") {
		t.Errorf("no warning about the secret env: %+v", w)
	}
	p.Delete()
	waitDone(t, p)
}

func assertOrder(t *testing.T, r *recorder, states ...kubelet.State) {
	t.Helper()
	got := r.states()
	i := 0
	for _, s := range got {
		if i < len(states) && s == string(states[i]) {
			i++
		}
	}
	if i < len(states) {
		t.Errorf("records %v do not contain %v in order", got, states)
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// Output to a non-file writer goes through our own pipe; a grandchild that
// keeps the pipe open must not delay the Exited report (it dies with the group).
func TestOutputToWriter(t *testing.T) {
	e := newEnv(t)
	var out testutil.SyncBuffer
	pod := testPod("talky", kubelettest.Server{})
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "echo hello from $POD_NAME; sleep 600 & exit 0"}
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p, err := kubelet.Start(context.Background(), kubelet.Options{Pod: pod, IP: e.ip, Port: e.port, Scale: scale, Sink: e.rec.Write, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e.rec.wait(t, kubelet.StateSucceeded)
	deadline := time.Now().Add(limit)
	for !strings.Contains(out.String(), "hello from talky") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "hello from talky") {
		t.Errorf("output = %q", out.String())
	}
}
