package workload

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rollsafe/rollsafe/internal/rollout"
	"github.com/rollsafe/rollsafe/manifest"
)

func deploymentYAML(replicas int, surge, unavail string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  strategy:
    rollingUpdate:
      maxSurge: %s
      maxUnavailable: %s
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web
`, replicas, surge, unavail)
}

func resolveOne(t *testing.T, doc string) (*Workload, error) {
	t.Helper()
	objs, err := manifest.Load([]string{"-"}, strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := Resolve(objs, Options{DefaultNamespace: "default"})
	if len(ws) != 1 {
		t.Fatalf("%d workloads", len(ws))
	}
	return ws[0], err
}

// check resolves maxSurge/maxUnavailable with the deployment controller's
// arithmetic (rollout.Fenceposts, also the lab's): surge up, unavailable
// down, and one unavailable when both round to 0.
func TestStrategyArithmeticIsTheController(t *testing.T) {
	for _, c := range []struct {
		replicas       int
		surge, unavail string
	}{
		{10, "25%", "25%"}, {3, "10%", "10%"}, {3, "0", "10%"}, {3, "0", "1"}, {3, "2", "0"}, {1, "25%", "25%"},
	} {
		w, err := resolveOne(t, deploymentYAML(c.replicas, c.surge, c.unavail))
		if err != nil {
			t.Fatal(err)
		}
		ms, mu := ios(c.surge), ios(c.unavail)
		s, u, _ := rollout.Fenceposts(&ms, &mu, c.replicas)
		if w.MaxSurge != s || w.MaxUnavailable != u {
			t.Errorf("%d replicas %s/%s: check %d/%d, controller %d/%d", c.replicas, c.surge, c.unavail, w.MaxSurge, w.MaxUnavailable, s, u)
		}
	}
	// 0 and 10 % on 3 replicas: valid, one pod at a time (check used to say 0/0).
	if w, _ := resolveOne(t, deploymentYAML(3, "0", "10%")); w.MaxSurge != 0 || w.MaxUnavailable != 1 {
		t.Errorf("0/10%% on 3: %d/%d, want 0/1", w.MaxSurge, w.MaxUnavailable)
	}
	// Written as 0 and 0 %: the API server rejects it; 0/0 so the strategy rule says so.
	if w, _ := resolveOne(t, deploymentYAML(3, "0", "0%")); w.MaxSurge != 0 || w.MaxUnavailable != 0 {
		t.Errorf("0/0%%: %d/%d, want 0/0", w.MaxSurge, w.MaxUnavailable)
	}
}

func TestStrategyBadValueNamesFileLine(t *testing.T) {
	_, err := resolveOne(t, deploymentYAML(3, "abc", "-1"))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per bad field: %q", msg)
	}
	for i, want := range [][2]string{{"-:9:", `Deployment web: maxSurge "abc": want a non-negative integer or a percentage`},
		{"-:10:", `Deployment web: maxUnavailable "-1": want a non-negative integer or a percentage`}} {
		if !strings.HasPrefix(lines[i], want[0]) || !strings.HasSuffix(lines[i], want[1]) {
			t.Errorf("line %q: want %s ... %s", lines[i], want[0], want[1])
		}
	}
}

// ios reads a value as YAML does: digits are an integer, anything else a string.
func ios(v string) intstr.IntOrString {
	if n, err := strconv.Atoi(v); err == nil {
		return intstr.FromInt(n)
	}
	return intstr.FromString(v)
}
