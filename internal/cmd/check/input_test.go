package check_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil"
)

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

const workflow = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: go test ./...\n"

func seed(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(seed003)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Nothing to judge never passes a gate: exit 2 and one line naming the input.
func TestCheckNothingToJudgeExitsTwo(t *testing.T) {
	empty := t.TempDir()
	ci := testutil.WriteTree(t, map[string]string{".github/workflows/ci.yml": workflow, "gitlab-ci.yml": workflow})
	configOnly := testutil.WriteTree(t, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"})
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"empty dir", "", []string{empty}, "rollsafe check: " + empty + ": nothing to judge: no YAML or JSON file in the directory"},
		{"empty stdin", "", []string{"-"}, "rollsafe check: -: nothing to judge: standard input is empty (did the command piping into rollsafe fail?)"},
		{"empty stdin, json", "", []string{"-o", "json", "-"}, "rollsafe check: -: nothing to judge: standard input is empty"},
		{"only CI YAML", "", []string{ci}, "rollsafe check: " + ci + ": nothing to judge: no Kubernetes object in the directory (1 skipped, see the notes)"},
		{"no workload", "", []string{configOnly}, "rollsafe check: " + configOnly + ": nothing to judge: 1 objects read, none a Deployment or StatefulSet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := run(t, c.stdin, c.args...)
			if code != cmdutil.ExitUsage {
				t.Fatalf("exit %d, want 2\nstdout %q\nstderr %q", code, out, stderr)
			}
			l := lines(stderr)
			if last := l[len(l)-1]; !strings.HasPrefix(last, c.want) {
				t.Errorf("stderr %q, want its last line to start %q", stderr, c.want)
			}
			for _, line := range l[:len(l)-1] {
				if !strings.HasPrefix(line, "rollsafe check: note: ") {
					t.Errorf("stderr line %q: only notes may come before the error", line)
				}
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing: there was nothing to judge", out)
			}
		})
	}
}

// One bad document beside good ones: the good ones' findings are printed,
// the bad one gets its file:line, and the exit is 2 (not 1, and never 0).
func TestCheckBadDocumentBesideGoodOnes(t *testing.T) {
	dir := testutil.WriteTree(t, map[string]string{
		"ci.yml":      workflow,
		"seed.yaml":   seed(t),
		"broken.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: [\n",
	})
	code, out, stderr := run(t, "", dir)
	if code != cmdutil.ExitUsage {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "prestop-exceeds-grace") || !strings.Contains(out, filepath.Join(dir, "seed.yaml")+":") {
		t.Errorf("the good document's findings are missing:\n%s", out)
	}
	if !strings.Contains(stderr, "rollsafe check: "+filepath.Join(dir, "broken.yaml")+":5: document 0:") {
		t.Errorf("stderr %q lacks broken.yaml:5", stderr)
	}
	if !strings.Contains(stderr, "rollsafe check: note: "+filepath.Join(dir, "ci.yml")+":1: document 0: skipped: not a Kubernetes object") {
		t.Errorf("stderr %q lacks the note on ci.yml", stderr)
	}
	// The same from stdin, with JSON on stdout still whole.
	code, out, stderr = run(t, seed(t)+"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: three\n", "-o", "json", "-")
	var doc struct{ Findings []struct{ Rule string } }
	if code != cmdutil.ExitUsage || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Findings) == 0 || !strings.Contains(stderr, "-:") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}

const kustOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
patches:
  - path: grace.yaml
`

// A kustomization directory is judged as kubectl kustomize renders it:
// one Deployment, the patch applied and never counted as a second one.
func TestCheckKustomization(t *testing.T) {
	dir := testutil.WriteTree(t, map[string]string{
		"base/kustomization.yaml":    "resources:\n  - seed.yaml\n",
		"base/seed.yaml":             seed(t),
		"overlay/kustomization.yaml": kustOverlay,
		// The patch fixes seed 003's grace period: the finding must go.
		"overlay/grace.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: qos-dummy\nspec:\n  template:\n    spec:\n      terminationGracePeriodSeconds: 90\n",
	})
	for _, p := range []string{dir, filepath.Join(dir, "overlay")} {
		code, out, stderr := run(t, "", p)
		if code == cmdutil.ExitUsage {
			t.Fatalf("%s: exit 2:\n%s", p, stderr)
		}
		if !strings.Contains(out, ", 1 workloads:") || strings.Contains(out, "prestop-exceeds-grace") {
			t.Errorf("%s: want the one patched Deployment judged:\n%s", p, out)
		}
		// What is left is located in the base's file, at a line, not in the rendered stream.
		if !strings.Contains(out, "Deployment/default/qos-dummy  "+filepath.Join(dir, "base", "seed.yaml")+":") {
			t.Errorf("%s: findings not located in base/seed.yaml:\n%s", p, out)
		}
		if !strings.Contains(stderr, "rollsafe check: note: "+filepath.Join(dir, "overlay")+": kustomization rendered") {
			t.Errorf("%s: stderr %q", p, stderr)
		}
	}
	// The patch given alone is no manifest: never a workload, nothing to judge.
	code, out, stderr := run(t, "", filepath.Join(dir, "overlay", "grace.yaml"))
	if code != cmdutil.ExitUsage || out != "" || !strings.Contains(stderr, "grace.yaml: skipped: a patch of the kustomization") {
		t.Errorf("patch alone: exit %d\n%s\n%s", code, out, stderr)
	}
	// The base alone still has seed 003's bug.
	if code, out, _ := run(t, "", filepath.Join(dir, "base")); code != cmdutil.ExitFailed || !strings.Contains(out, "prestop-exceeds-grace") {
		t.Errorf("base: exit %d\n%s", code, out)
	}
}

// The help's first example on the project's own deploy/: both overlays
// judged, the CI pipelines noted, findings or not but never exit 2.
func TestCheckProjectDeployDir(t *testing.T) {
	code, out, stderr := run(t, "", "../../../deploy/")
	if code != cmdutil.ExitOK && code != cmdutil.ExitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"Deployment/jiameng-api-dev/jiameng-api", "Deployment/jiameng-api-prod/jiameng-api", ", 2 workloads:"} {
		if !strings.Contains(out, want) && !(code == cmdutil.ExitOK && strings.HasPrefix(want, "Deployment/")) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"rollsafe check: note: ../../../deploy/cicd/github/deploy.yml:",
		"rollsafe check: note: ../../../deploy/k8s/overlays/dev: kustomization rendered: ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// And one overlay on its own.
	code, out, stderr = run(t, "", "../../../deploy/k8s/overlays/dev")
	if (code != cmdutil.ExitOK && code != cmdutil.ExitFailed) || !strings.Contains(out, " objects, 1 workloads:") {
		t.Fatalf("overlay: exit %d\n%s\n%s", code, out, stderr)
	}
}

// An unusable annotation on one workload beside good ones: the good ones
// still get their findings, the bad one its file:line, and the exit is 2.
func TestCheckBadAnnotationBesideGoodWorkloads(t *testing.T) {
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: slow\n  annotations:\n" +
		"    rollsafe.dev/max-request-duration: soon\nspec:\n  template:\n    metadata:\n      labels: {app: slow}\n" +
		"    spec:\n      containers:\n      - {name: slow, image: slow, ports: [{containerPort: 80}]}\n"
	code, out, stderr := run(t, seed(t)+"\n---\n"+bad, "-o", "json", "-")
	if code != cmdutil.ExitUsage {
		t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", code, out, stderr)
	}
	var doc struct {
		Findings []struct{ Rule, Workload string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not whole JSON: %v\n%s", err, out)
	}
	for _, f := range doc.Findings {
		if f.Workload != "Deployment/default/qos-dummy" {
			t.Errorf("finding %s for %s: only the good workload is judged", f.Rule, f.Workload)
		}
	}
	if len(doc.Findings) == 0 {
		t.Errorf("the good workload's findings are missing:\n%s", out)
	}
	line := strings.Count(seed(t)+"\n---\n", "\n") + 6 // the annotation's line in bad
	want := fmt.Sprintf(`rollsafe check: -:%d: document 3: Deployment slow: annotation rollsafe.dev/max-request-duration "soon": not a duration`, line)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}
