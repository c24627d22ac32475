package soak_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/soak"
	"github.com/rollsafe/rollsafe/soak/soaktest"
	"github.com/rollsafe/rollsafe/timeline"
)

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, controlplane.TestOptions)) }

// manifestRules reads the Role out of deploy/soak/rbac.yaml, so the test
// runs with what users apply.
func manifestRules(t *testing.T) []rbacv1.PolicyRule {
	return testutil.RoleRules(t, filepath.Join("..", "deploy", "soak", "rbac.yaml"))
}

func TestManifestRoleIsSoakRules(t *testing.T) {
	if got := manifestRules(t); !reflect.DeepEqual(got, soak.Rules) {
		t.Fatalf("deploy/soak/rbac.yaml Role rules\n%+v\ndiffer from soak.Rules\n%+v", got, soak.Rules)
	}
}

// env is one test's namespace on the shared control plane, with the pod
// stand-in and the backend running.
type env struct {
	cp    *controlplane.ControlPlane
	ns    string
	admin kubernetes.Interface
	pods  *soaktest.Pods
	url   string
}

func newEnv(t *testing.T, replicas int32) *env {
	t.Helper()
	cp, se := soaktest.ForTest(t, "soak", replicas)
	// As a user would: soak an app that already answers, so no failure
	// falls before the first rollout.
	testutil.WaitOK(t, se.Backend.URL)
	return &env{cp: cp, ns: se.Namespace, admin: se.Admin, pods: se.Pods, url: se.Backend.URL}
}

func (e *env) client(t *testing.T, rules []rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	var cfg *rest.Config = e.cp.Config()
	if rules != nil {
		var err error
		if cfg, err = e.cp.ServiceAccount(context.Background(), e.ns, "rollsafe-soak", rules); err != nil {
			t.Fatal(err)
		}
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collect keeps what a soak run streamed.
type collect struct {
	mu      sync.Mutex
	results []soak.Result
	marks   []timeline.Record
	reqs    int
}

func (c *collect) config(cfg soak.Config) soak.Config {
	cfg.OnResult = func(r *soak.Result) { c.mu.Lock(); c.results = append(c.results, *r); c.mu.Unlock() }
	cfg.Sink = func(r *timeline.Record) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if r.Kind == timeline.KindRollout {
			c.marks = append(c.marks, *r)
		} else {
			c.reqs++
		}
		return nil
	}
	return cfg
}

func baseConfig(e *env, client kubernetes.Interface) soak.Config {
	return soak.Config{Client: client, Namespace: e.ns, Deployment: "web",
		Trigger:  soak.Trigger{Kind: soak.TriggerEnv, Env: "VERSION"},
		Probe:    probe.Config{URL: e.url, Rate: 100, Timeout: 2 * time.Second, VersionHeader: "X-Version"},
		Rollouts: 3, RolloutTimeout: time.Minute}
}

func TestSoakWithExactlyTheManifestRole(t *testing.T) {
	e := newEnv(t, 2)
	c := &collect{}
	total, err := soak.Run(context.Background(), c.config(baseConfig(e, e.client(t, manifestRules(t)))))
	if err != nil {
		t.Fatalf("soak with deploy/soak/rbac.yaml's Role: %v", err)
	}
	if total.Rollouts != 3 || total.Clean != 3 || total.Lost != 0 || total.Gate(-1) != "" {
		t.Fatalf("want 3 clean rollouts and no loss, got %+v (gate %q)", total, total.Gate(-1))
	}
	if len(c.results) != 3 {
		t.Fatalf("want 3 results streamed, got %d", len(c.results))
	}
	for i, r := range c.results {
		want := []string{"1", "2", "3"}[i]
		if r.Rollout != i+1 || r.Version != want || r.Result != soak.OutcomeClean || r.NewVersionSeenAfter == nil || r.Complete.IsZero() || r.Requests == 0 {
			t.Errorf("rollout %d: %+v", i+1, r)
		}
	}
	// The Deployment really rolled: its template carries the last sequence.
	d, err := e.admin.AppsV1().Deployments(e.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := d.Spec.Template.Spec.Containers[0].Env[0].Value; v != "3" {
		t.Fatalf("VERSION after 3 rollouts = %q", v)
	}
	states := map[string]int{}
	for _, m := range c.marks {
		states[m.State]++
	}
	if states["started"] != 3 || states["complete"] != 3 || states["version_seen"] != 3 {
		t.Fatalf("rollout marks: %v", states)
	}
	if uint64(c.reqs) != total.Requests {
		t.Fatalf("sink saw %d requests, total says %d", c.reqs, total.Requests)
	}
}

func TestSoakWithoutPatchNamesIt(t *testing.T) {
	e := newEnv(t, 1)
	var rules []rbacv1.PolicyRule
	for _, r := range manifestRules(t) {
		r = *r.DeepCopy()
		r.Verbs = slicesDelete(r.Verbs, "patch")
		rules = append(rules, r)
	}
	c := &collect{}
	_, err := soak.Run(context.Background(), c.config(baseConfig(e, e.client(t, rules))))
	var pe *soak.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "patch deployments") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want one line naming patch deployments, got %v", err)
	}
	if strings.Contains(err.Error(), "get deployments") || strings.Contains(err.Error(), "pods") {
		t.Fatalf("names permissions it has: %v", err)
	}
	if c.reqs != 0 {
		t.Fatalf("sent %d requests before failing on RBAC", c.reqs)
	}
}

func slicesDelete(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func TestSoakAnnotationTriggerConfirmsByNewReplica(t *testing.T) {
	e := newEnv(t, 2)
	cfg := baseConfig(e, e.client(t, nil))
	cfg.Trigger = soak.Trigger{Kind: soak.TriggerAnnotation}
	cfg.Probe.VersionHeader = ""
	cfg.Rollouts = 2
	c := &collect{}
	total, err := soak.Run(context.Background(), c.config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if total.Clean != 2 {
		t.Fatalf("want 2 clean rollouts, got %+v", total)
	}
	d, err := e.admin.AppsV1().Deployments(e.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Annotations[soak.RestartedAtAnnotation] == "" || d.Annotations["deployment.kubernetes.io/revision"] != "3" {
		t.Fatalf("template annotations %v, revision %q", d.Spec.Template.Annotations, d.Annotations["deployment.kubernetes.io/revision"])
	}
}

func TestSoakCountsLostRequestsPerRollout(t *testing.T) {
	e := newEnv(t, 1)
	e.pods.LosePerRollout.Store(3)
	cfg := baseConfig(e, e.client(t, nil))
	cfg.Rollouts = 2
	c := &collect{}
	total, err := soak.Run(context.Background(), c.config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if total.LostRollout != 2 || total.Lost != 6 || total.Failures[timeline.ClassHTTP502] != 6 {
		t.Fatalf("want 2 rollouts losing 3 × 502 each, got %+v", total)
	}
	for _, r := range c.results {
		if r.Lost != 3 || r.Failures[timeline.ClassHTTP502] != 3 || r.Result != soak.OutcomeLost {
			t.Errorf("rollout %d: %+v", r.Rollout, r)
		}
	}
	if g := total.Gate(-1); !strings.Contains(g, "6 of") {
		t.Fatalf("gate: %q", g)
	}
	if g := total.Gate(0.99); g != "" {
		t.Fatalf("a 99%% budget should pass: %q", g)
	}
}

func TestSoakRolloutTimeoutStops(t *testing.T) {
	e := newEnv(t, 1)
	cfg := baseConfig(e, e.client(t, nil))
	cfg.RolloutTimeout = 3 * time.Second
	// The first pod is Ready and answers; no pod after it will be.
	e.pods.Hold.Store(true)
	c := &collect{}
	cfg = c.config(cfg)
	total, err := soak.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if total.Rollouts != 1 || total.Failed != 1 || len(c.results) != 1 {
		t.Fatalf("want one failed rollout and a stop, got %+v", total)
	}
	if r := c.results[0]; !strings.Contains(r.Error, "rollout timeout 3s") || !strings.Contains(r.Error, "updated replicas available") && !strings.Contains(r.Error, "old replicas") {
		t.Fatalf("error should say timeout and where the rollout stood: %q", r.Error)
	}
	if g := total.Gate(1); !strings.Contains(g, "1 of 1 rollouts failed") {
		t.Fatalf("gate: %q", g)
	}
}

func TestSoakNotFoundAndBadTrigger(t *testing.T) {
	e := newEnv(t, 1)
	cfg := baseConfig(e, e.client(t, nil))
	cfg.Deployment = "nope"
	_, err := soak.Run(context.Background(), cfg)
	var ie *soak.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `deployment "nope" not found`) {
		t.Fatalf("got %v", err)
	}
	cfg = baseConfig(e, e.client(t, nil))
	cfg.Trigger = soak.Trigger{Kind: soak.TriggerArg, Index: 5}
	if _, err = soak.Run(context.Background(), cfg); !errors.As(err, &ie) || !strings.Contains(err.Error(), "no index 5") {
		t.Fatalf("got %v", err)
	}
}
