package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

var overlays = []string{"dev", "prod"}

// checkRendered runs rollsafe's check, with its documented defaults, on
// rendered manifests, as the pipelines' `rollsafe check rendered.yaml` does.
func checkRendered(t *testing.T, name string, yaml []byte) *check.Result {
	t.Helper()
	objs, err := manifest.Parse(name, yaml)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Check(objs, workload.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Every overlay, rendered, passes rollsafe check with zero findings of any
// severity (info included).
func TestOverlaysPassRollsafeCheck(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			out, err := Render(Path("deploy", "k8s", "overlays", o))
			if err != nil {
				t.Fatal(err)
			}
			res := checkRendered(t, o+".yaml", out)
			if len(res.Workloads) != 1 {
				t.Fatalf("%d workloads resolved, want the one Deployment", len(res.Workloads))
			}
			w := res.Workloads[0]
			if !w.GateActive() || !w.Served() {
				t.Errorf("gate active %v, served %v: the Namespace label or Service/Ingress did not join", w.GateActive(), w.Served())
			}
			for _, f := range res.Findings {
				t.Errorf("%s %s: %s", f.Rule, f.Object, f.Message)
			}
		})
	}
}

// The same test must fail on a kit with a link of the chain removed.
func TestRollsafeCheckCatchesBrokenOverlay(t *testing.T) {
	for _, c := range []struct {
		file, old, new, rule string
	}{
		{"deployment.yaml", "              sleep:\n                seconds: 29\n", "              sleep:\n                seconds: 5\n", "prestop-too-short"},
		{"namespace.yaml", "elbv2.k8s.aws/pod-readiness-gate-inject: enabled", "elbv2.k8s.aws/pod-readiness-gate-inject: disabled", "readiness-gate-missing"},
		{"deployment.yaml", `rollsafe.dev/app-idle-timeout: "75s"`, `rollsafe.dev/app-idle-timeout: "30s"`, "app-idle-timeout-too-short"},
		{"deployment.yaml", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 20", "prestop-exceeds-grace"},
	} {
		t.Run(c.rule, func(t *testing.T) {
			dir := copyTree(t, Path("deploy", "k8s"))
			p := filepath.Join(dir, "base", c.file)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			broken := strings.Replace(string(data), c.old, c.new, 1)
			if broken == string(data) {
				t.Fatalf("%s no longer contains %q: update the mutation", c.file, c.old)
			}
			if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := Render(filepath.Join(dir, "overlays", "dev"))
			if err != nil {
				t.Fatal(err)
			}
			res := checkRendered(t, "dev.yaml", out)
			var rules []string
			for _, f := range res.Findings {
				rules = append(rules, f.Rule)
			}
			if !strings.Contains(strings.Join(rules, " "), c.rule) {
				t.Fatalf("findings %v, want %s", rules, c.rule)
			}
			if !check.Failed(res.Findings, check.Error) {
				t.Errorf("findings %v would not fail the pipeline's gate", rules)
			}
		})
	}
}

// copyTree copies a directory of small text files into a temp dir.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
