package nodeagent

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
)

// A change to the pod template (an env value, as seed 003 did) rolls
// through the real deployment controller: new pods run and become Ready,
// every old pod runs its preStop hook before it gets SIGTERM, its process
// ends, and its object is deleted by the agent.
func TestRollingUpdateRunsPreStopBeforeSIGTERM(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.14.1"))
	ctx := context.Background()
	l.deployment("web", 2)
	l.waitRolledOut("web")
	old := l.waitReadyPods("app=web", 2)
	oldPids := map[string]int{}
	for i := range old {
		oldPids[old[i].Name] = pid(t, &old[i])
	}

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []map[string]any{{"name": "app", "env": []map[string]any{{"name": "VERSION", "value": "v2"}}}}}}}})
	if _, err := l.cs.AppsV1().Deployments(l.ns).Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	l.waitRolledOut("web")
	for name := range oldPids {
		l.waitPodGone(name)
	}

	for name, p := range oldPids {
		if !kubelettest.ProcessGone(p) {
			t.Errorf("old pod %s: process %d still runs after its object was deleted", name, p)
		}
		events, err := kubelettest.ReadEvents(filepath.Join(l.events, name))
		if err != nil {
			t.Fatal(err)
		}
		pre, okPre := kubelettest.Find(events, "prestop")
		term, okTerm := kubelettest.Find(events, "sigterm")
		if !okPre || !okTerm {
			t.Errorf("old pod %s: events %+v, want prestop and sigterm", name, events)
			continue
		}
		if !pre.Time.Before(term.Time) {
			t.Errorf("old pod %s: SIGTERM at %s came before preStop at %s", name, term.Time, pre.Time)
		}
	}

	for _, p := range l.waitReadyPods("app=web", 2) {
		if _, wasOld := oldPids[p.Name]; wasOld {
			t.Fatalf("pod %s survived the rollout", p.Name)
		}
		if v := envValue(p.Spec.Containers[0].Env, "VERSION"); v != "v2" {
			t.Fatalf("pod %s runs VERSION=%q, want v2", p.Name, v)
		}
		events, err := kubelettest.ReadEvents(filepath.Join(l.events, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := kubelettest.Find(events, "start"); !ok {
			t.Fatalf("new pod %s: no start event (%+v)", p.Name, events)
		}
		if kubelettest.ProcessGone(pid(t, &p)) {
			t.Fatalf("new pod %s: process not running", p.Name)
		}
	}
	if w := l.sink.warnings(); len(w) > 0 {
		t.Fatalf("agent warnings: %v", w)
	}
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
