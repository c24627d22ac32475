package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/nodeagent"
	"github.com/rollsafe/rollsafe/probe/fleet"
	"github.com/rollsafe/rollsafe/timeline"
)

var rollsafe string

func TestMain(m *testing.M) {
	testutil.RunWithBinary(m, "github.com/rollsafe/rollsafe/cmd/rollsafe", &rollsafe, func(m *testing.M) int {
		return controlplane.RunTests(m, controlplane.TestOptions)
	})
}

// patience bounds every wait for the cluster; a liveness bound on busy
// shared cores, not a speed assertion.
const patience = 2 * time.Minute

// manifestRules reads the Role out of deploy/probe/rbac.yaml, so the
// coordinator runs with what users apply.
func manifestRules(t *testing.T) []rbacv1.PolicyRule {
	return testutil.RoleRules(t, filepath.Join("..", "..", "deploy", "probe", "rbac.yaml"))
}

func TestManifestRoleIsFleetRules(t *testing.T) {
	if got := manifestRules(t); !reflect.DeepEqual(got, fleet.Rules) {
		t.Fatalf("deploy/probe/rbac.yaml Role rules\n%+v\ndiffer from fleet.Rules\n%+v", got, fleet.Rules)
	}
}

// env is the cluster (two node agents running pods' commands as host
// processes), the ALB stand-in in front of one backend, and a kubeconfig
// holding exactly deploy/probe's Role.
type env struct {
	admin      kubernetes.Interface
	ns         string
	kubeconfig string
	lb         *alb.LB
	accessLog  *testutil.SyncBuffer
}

func newEnv(t *testing.T) *env {
	cp := controlplane.ForTest(t)
	admin, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-fleet-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{admin: admin, ns: ns.Name, accessLog: &testutil.SyncBuffer{}}
	for i, first := range []string{"127.0.31.1", "127.0.32.1"} {
		a, err := nodeagent.Start(ctx, nodeagent.Options{Config: cp.Config(), NodeName: fmt.Sprintf("fleet-%d-%s", i, e.ns),
			Port: 18080 + i, FirstIP: netip.MustParseAddr(first)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
	}
	sa, err := cp.ServiceAccount(ctx, e.ns, "rollsafe-probe", manifestRules(t))
	if err != nil {
		t.Fatal(err)
	}
	e.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(e.kubeconfig, sa, e.ns); err != nil {
		t.Fatal(err)
	}
	e.lb = labLB(t, e.accessLog)
	return e
}

// labLB is the ALB stand-in with one healthy backend on loopback.
func labLB(t *testing.T, accessLog *testutil.SyncBuffer) *alb.LB {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }))
	t.Cleanup(backend.Close)
	cfg := alb.DefaultConfig()
	cfg.HealthCheck.Interval = 50 * time.Millisecond
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.Nodes = 2
	cfg.AccessLog = accessLog
	lb, err := alb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	addr := backend.Listener.Addr().(*net.TCPAddr)
	target := alb.Target{IP: addr.IP.String(), Port: addr.Port}
	if err := lb.Register(target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backend healthy", func(context.Context) (bool, error) {
		return lb.HealthOf(target).State == alb.StateHealthy, nil
	})
	return lb
}

func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// probe starts the coordinator as a user runs it: 4 workers, the lab's
// rollsafe binary as their command (the node agent runs it on the host).
func (e *env) probe(t *testing.T, record string, extra ...string) (*exec.Cmd, *bytes.Buffer, *testutil.SyncBuffer) {
	args := append([]string{"probe", e.lb.URL() + "/", "--kube", "--kubeconfig", e.kubeconfig, "-n", e.ns,
		"--workers", "4", "--worker-command", rollsafe, "--image", "rollsafe",
		"--rate", "200", "-c", "4", "--start-delay", "2s", "--record", record, "-o", "json"}, extra...)
	cmd := exec.Command(rollsafe, args...)
	var out bytes.Buffer
	var errOut testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out, &errOut
}

func exitCode(t *testing.T, cmd *exec.Cmd, errOut *testutil.SyncBuffer) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("coordinator: %v\n%s", err, errOut)
	return -1
}

// output is what -o json prints for a fleet run.
type output struct {
	Requests    uint64 `json:"requests"`
	Interrupted bool   `json:"interrupted"`
	Job         string `json:"job"`
	Workers     []struct {
		Index    int    `json:"index"`
		Pod      string `json:"pod"`
		Node     string `json:"node"`
		State    string `json:"state"`
		Reason   string `json:"reason"`
		Reported int64  `json:"reported"`
		Summary  struct {
			Requests uint64 `json:"requests"`
		} `json:"summary"`
	} `json:"workers"`
	Nodes []struct {
		Name    string `json:"name"`
		Workers []int  `json:"workers"`
		Summary struct {
			Requests uint64 `json:"requests"`
		} `json:"summary"`
	} `json:"nodes"`
}

func decode(t *testing.T, b *bytes.Buffer, errOut *testutil.SyncBuffer) output {
	t.Helper()
	var o output
	if err := json.Unmarshal(b.Bytes(), &o); err != nil {
		t.Fatalf("-o json: %v\n%s\nstderr:\n%s", err, b, errOut)
	}
	return o
}

// requests reads the request records of a --record file by trace id.
func requests(t *testing.T, path string) map[string]timeline.Record {
	t.Helper()
	recs := map[string]timeline.Record{}
	err := timeline.ReadFile(path, func(r *timeline.Record) error {
		if r.Kind == timeline.KindRequest {
			if _, dup := recs[r.TraceID]; dup {
				t.Errorf("trace id %s recorded twice", r.TraceID)
			}
			recs[r.TraceID] = *r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

var traceRe = regexp.MustCompile(`"(Root=1-[0-9a-f]{8}-([0-9a-f]{8})[0-9a-f]{16})"`)

// logged counts the access log's lines per trace id of run (8 hex digits).
func (e *env) logged(t *testing.T, run string) map[string]int {
	t.Helper()
	if err := e.lb.FlushAccessLog(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(e.accessLog.String()))
	for sc.Scan() {
		if m := traceRe.FindStringSubmatch(sc.Text()); m != nil && m[2] == run {
			seen[m[1]]++
		}
	}
	return seen
}

func runID(t *testing.T, recs map[string]timeline.Record) string {
	for id := range recs {
		return id[16:24]
	}
	t.Fatal("no request recorded")
	return ""
}

// noJobLeft checks, right after the coordinator exits, that it left no Job
// and no pod behind.
func (e *env) noJobLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	jobs, err := e.admin.BatchV1().Jobs(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 || len(pods.Items) != 0 {
		t.Errorf("left behind: %d jobs, %d pods", len(jobs.Items), len(pods.Items))
	}
}

// workerPods waits until all 4 workers run and returns their pods by index.
func (e *env) workerPods(t *testing.T) map[int]corev1.Pod {
	byIndex := map[int]corev1.Pod{}
	waitFor(t, "4 running workers", func(ctx context.Context) (bool, error) {
		pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: fleet.RunLabel})
		if err != nil {
			return false, err
		}
		clear(byIndex)
		for _, p := range pods.Items {
			i, _ := strconv.Atoi(p.Annotations["batch.kubernetes.io/job-completion-index"])
			if p.Status.Phase == corev1.PodRunning {
				byIndex[i] = p
			}
		}
		return len(byIndex) == 4, nil
	})
	return byIndex
}

// waitTraffic waits until the ALB stand-in has logged n requests.
func (e *env) waitTraffic(t *testing.T, n int) {
	waitFor(t, fmt.Sprintf("%d requests through the ALB", n), func(context.Context) (bool, error) {
		if err := e.lb.FlushAccessLog(); err != nil {
			return false, err
		}
		return strings.Count(e.accessLog.String(), "\n") >= n, nil
	})
}

func pid(t *testing.T, p corev1.Pod) int {
	t.Helper()
	id, ok := strings.CutPrefix(p.Status.ContainerStatuses[0].ContainerID, "rollsafe://")
	n, err := strconv.Atoi(id)
	if !ok || err != nil {
		t.Fatalf("pod %s: container id %q", p.Name, p.Status.ContainerStatuses[0].ContainerID)
	}
	return n
}

// The whole story on a real control plane: 4 workers as an Indexed Job
// on two nodes, each the rollsafe binary in worker mode, probing the ALB
// stand-in; the merged record holds every request once, as the workers
// and the access log count them; a worker killed midway is reported and
// fails the run with exit 3; Ctrl-C leaves no Job and no pod.
func TestFleetOnTheControlPlane(t *testing.T) {
	e := newEnv(t)
	t.Run("merged equals workers equals access log", func(t *testing.T) {
		record := filepath.Join(t.TempDir(), "run.ndjson")
		cmd, out, errOut := e.probe(t, record, "--duration", "3s")
		if code := exitCode(t, cmd, errOut); code != 0 {
			t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
		}
		o := decode(t, out, errOut)
		recs := requests(t, record)
		var sum uint64
		for _, w := range o.Workers {
			if w.State != string(fleet.Done) || w.Reported != int64(w.Summary.Requests) {
				t.Errorf("worker %d: %s (%s), reported %d, %d arrived", w.Index, w.State, w.Reason, w.Reported, w.Summary.Requests)
			}
			sum += w.Summary.Requests
		}
		var onNodes uint64
		for _, n := range o.Nodes {
			onNodes += n.Summary.Requests
		}
		logged := e.logged(t, runID(t, recs))
		if len(o.Workers) != 4 || o.Requests == 0 || o.Requests != sum || o.Requests != onNodes ||
			o.Requests != uint64(len(recs)) || len(logged) != len(recs) {
			t.Fatalf("merged %d, workers %d, nodes %d, records %d, access log %d", o.Requests, sum, onNodes, len(recs), len(logged))
		}
		for id, n := range logged {
			if _, ok := recs[id]; !ok || n != 1 {
				t.Errorf("access log has %s %d times; recorded: %v", id, n, ok)
			}
		}
		t.Logf("%d requests from %d workers on %d nodes, each in the record and the access log once", o.Requests, len(o.Workers), len(o.Nodes))
		e.noJobLeft(t)
	})
	t.Run("a worker killed midway is reported", func(t *testing.T) {
		record := filepath.Join(t.TempDir(), "run.ndjson")
		before := strings.Count(e.accessLog.String(), "\n")
		cmd, out, errOut := e.probe(t, record, "--duration", "8s")
		pods := e.workerPods(t)
		e.waitTraffic(t, before+200)
		if err := syscall.Kill(pid(t, pods[2]), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd, errOut); code != 3 {
			t.Fatalf("exit %d, want 3 (a hole in the recording):\n%s\n%s", code, out, errOut)
		}
		o := decode(t, out, errOut)
		for _, w := range o.Workers {
			dead := w.Index == 2
			if dead != (w.State == string(fleet.Died)) || (dead && !strings.Contains(w.Reason, "exit 137 (signal 9)")) {
				t.Errorf("worker %d: %s (%s)", w.Index, w.State, w.Reason)
			}
		}
		if msg := errOut.String(); !strings.Contains(msg, "1 of 4 workers lost") || !strings.Contains(msg, "worker 2 (pod "+pods[2].Name) {
			t.Errorf("stderr does not name the lost worker:\n%s", msg)
		}
		recs := requests(t, record)
		logged := e.logged(t, runID(t, recs))
		for id := range recs {
			if logged[id] != 1 {
				t.Errorf("recorded %s, in the access log %d times", id, logged[id])
			}
		}
		e.noJobLeft(t)
	})
	t.Run("workers that never start are reported", func(t *testing.T) {
		record := filepath.Join(t.TempDir(), "run.ndjson")
		cmd, out, errOut := e.probe(t, record, "--duration", "2s", "--start-delay", "0s", "--start-timeout", "3s",
			"--worker-command", filepath.Join(t.TempDir(), "no-such-rollsafe"))
		if code := exitCode(t, cmd, errOut); code != 3 {
			t.Fatalf("exit %d, want 3:\n%s\n%s", code, out, errOut)
		}
		o := decode(t, out, errOut)
		for _, w := range o.Workers {
			if w.State != string(fleet.NeverStarted) || !strings.Contains(w.Reason, "did not start within 3s") {
				t.Errorf("worker %d: %s (%s)", w.Index, w.State, w.Reason)
			}
		}
		if msg := errOut.String(); !strings.Contains(msg, "4 of 4 workers lost") {
			t.Errorf("stderr:\n%s", msg)
		}
		e.noJobLeft(t)
	})
	t.Run("ctrl-c leaves no job and no pod", func(t *testing.T) {
		record := filepath.Join(t.TempDir(), "run.ndjson")
		before := strings.Count(e.accessLog.String(), "\n")
		cmd, out, errOut := e.probe(t, record, "--duration", "60s")
		e.workerPods(t)
		e.waitTraffic(t, before+100)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		code := exitCode(t, cmd, errOut)
		e.noJobLeft(t)
		o := decode(t, out, errOut)
		if !o.Interrupted || code != 0 {
			t.Errorf("exit %d, interrupted %v:\n%s", code, o.Interrupted, errOut)
		}
		for _, w := range o.Workers {
			if w.State != string(fleet.Stopped) {
				t.Errorf("worker %d: %s (%s), want stopped with every record", w.Index, w.State, w.Reason)
			}
		}
	})
}
