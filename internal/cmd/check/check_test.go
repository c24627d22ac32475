package check_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
)

// run is `rollsafe check args...` with stdin.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	return clitest.Run(t.Context(), stdin, append([]string{"check"}, args...)...)
}

const seed003 = "../../../check/testdata/seeds/seed003-dummy.yaml"

func TestSeed003JSONExitsOne(t *testing.T) {
	code, out, stderr := run(t, "", "-o", "json", seed003)
	if code != cmdutil.ExitFailed {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc struct {
		Findings []struct{ Rule, Severity, Object, Message, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	found := false
	for _, f := range doc.Findings {
		if f.Rule == "prestop-exceeds-grace" && f.Severity == "error" && f.Object == "Deployment/default/qos-dummy" && f.Fix != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no prestop-exceeds-grace in %s", out)
	}
}

func TestStdinAndFailOn(t *testing.T) {
	data, err := os.ReadFile("../../../check/testdata/seeds/seeds-recommended.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The seeds' 40/50/35 holds for requests up to 18 s at the default P 17 s.
	// Only a pdb-missing warning: clean at the default threshold, failed at warning.
	if code, out, _ := run(t, string(data), "--max-request-duration", "18s", "-"); code != 0 || !strings.Contains(out, "pdb-missing") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if code, _, _ := run(t, string(data), "--max-request-duration", "18s", "--fail-on", "warning", "-"); code != cmdutil.ExitFailed {
		t.Fatalf("--fail-on warning: exit %d", code)
	}
	code, out, _ := run(t, string(data), "--max-request-duration", "18s", "--recommend", "-")
	if code != 0 || !strings.Contains(out, "recommended for Deployment/api-dev/demo-api") || strings.Contains(out, "\x1b[") {
		t.Fatalf("--recommend: exit %d: %q", code, out)
	}
}

func TestBadInputExitsTwoWithFileLine(t *testing.T) {
	code, _, stderr := run(t, "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [\n", "-")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "rollsafe check: -:") || !strings.Contains(stderr, "document 1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = run(t, "", "--fail-on", "fatal", seed003)
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "--fail-on") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = run(t, "", "-o", "yaml", seed003)
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "--output") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if code, _, _ = run(t, ""); code != cmdutil.ExitUsage {
		t.Fatalf("no path: exit %d", code)
	}
	code, _, stderr = run(t, "", "deploy/nope.yaml")
	if code != cmdutil.ExitUsage || stderr != "rollsafe check: deploy/nope.yaml: no such file or directory\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n    rollsafe.dev/app-idle-timeout: soon\nspec:\n  template:\n    spec:\n      containers: []\n"
	code, _, stderr = run(t, bad, "-")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "-:6: document 0: Deployment d: annotation rollsafe.dev/app-idle-timeout") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestSARIFOutput(t *testing.T) {
	code, out, _ := run(t, "", "-o", "sarif", seed003)
	if code != cmdutil.ExitFailed || !strings.Contains(out, `"version": "2.1.0"`) || !strings.Contains(out, `"startLine": 41`) {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// --recommend JSON gives seconds, as manifests write them, and says which
// defaults drove each number; the text prints them beside the numbers.
func TestRecommendSecondsAndDefaults(t *testing.T) {
	code, out, stderr := run(t, "", "-o", "json", "--recommend", seed003)
	if code != cmdutil.ExitFailed {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc struct {
		Recommendations []struct {
			PreStopSeconds, TerminationGracePeriodSeconds, DeregistrationDelaySeconds, MinPreStopSeconds, DrainDelaySeconds float64
			Inputs                                                                                                          []struct {
				Name, Source, Flag string
				Seconds            float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Recommendations) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	// Instance targets (Cluster): endpoint update (the controller-lag
	// figure, 5) + kube-proxy sync 1 = 6, + 2 margin = 8; no target
	// deregisters, so the preStop need not outlast the delay. The draining
	// timeout: P 17 + longest request 30 (the default) + 2 margin = 49; the
	// drain through kube-proxy, past the Classic ELB's 60 s idle timeout:
	// 65; grace 8 + 65 + 30 + 1.
	r := doc.Recommendations[0]
	if r.MinPreStopSeconds != 6 || r.PreStopSeconds != 8 || r.DeregistrationDelaySeconds != 49 || r.DrainDelaySeconds != 65 ||
		r.TerminationGracePeriodSeconds != 104 {
		t.Errorf("recommendation %+v", r)
	}
	want := map[string]float64{"propagation P": 17, "controller lag": 5, "longest request": 30, "kube-proxy sync": 1}
	for _, in := range r.Inputs {
		flagless := in.Name == "kube-proxy sync" // no flag sets it: kube-proxy's own default
		if in.Source != "default" || in.Seconds != want[in.Name] || (in.Flag == "") != flagless {
			t.Errorf("input %+v", in)
		}
		delete(want, in.Name)
	}
	if len(want) > 0 {
		t.Errorf("inputs missing: %v", want)
	}
	_, text, _ := run(t, "", "--recommend", "--propagation", "20s", seed003)
	// A Classic ELB has no deregistration delay: the number goes into its
	// connection draining annotations.
	for _, s := range []string{"preStop sleep 8 (necessary: 6), terminationGracePeriodSeconds 104, connection draining timeout 52",
		`app drain with "Connection: close" 65s after SIGTERM`, "app keep-alive > 60s (load balancer idle timeout 60s)",
		`Service/default/qos-dummy: service.beta.kubernetes.io/aws-load-balancer-connection-draining-enabled: "true"`,
		`Service/default/qos-dummy: service.beta.kubernetes.io/aws-load-balancer-connection-draining-timeout: "52"`,
		"propagation P 20s (flag --propagation)", "controller lag 5s (default, --controller-lag changes it; instance targets: also stands in for the endpoint update",
		"kube-proxy sync 1s (default; kube-proxy's min-sync-period",
		"longest request 30s (default, --max-request-duration changes it"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
}

// Files name no cluster: a connection flag without --live is refused, -n
// (the namespace of objects that name none) is not.
func TestKubeFlagsNeedLive(t *testing.T) {
	code, _, stderr := run(t, "", "--context", "prod", seed003)
	if code != cmdutil.ExitUsage || stderr != "rollsafe: --context prod: needs --live (with files, only -n applies)\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run(t, "", "-n", "shop", seed003); code != cmdutil.ExitFailed {
		t.Fatalf("-n with files: exit %d, stderr %q", code, stderr)
	}
}

const seed003Manifests = "../../../check/testdata/seeds/seed003-manifests.yaml"

// Seed 003's manifests name its three broken links and exit 1, from a
// file and from stdin alike; the copy with check's fixes pasted exits 0.
func TestSeed003ManifestsAndFixedCopy(t *testing.T) {
	data, err := os.ReadFile(seed003Manifests)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ stdin, path, file string }{{"", seed003Manifests, seed003Manifests}, {string(data), "-", "-"}} {
		code, out, stderr := run(t, c.stdin, "-o", "json", c.path)
		if code != cmdutil.ExitFailed {
			t.Fatalf("%s: exit %d, stderr %q", c.path, code, stderr)
		}
		var doc struct {
			Findings []struct {
				Rule, File string
				Line       int
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		got := map[string]bool{}
		for _, f := range doc.Findings {
			got[f.Rule] = true
			if f.Rule == "duplicate-key" && (f.File != c.file || f.Line != 79) {
				t.Errorf("%s: duplicate-key at %s:%d, want %s:79", c.path, f.File, f.Line, c.file)
			}
		}
		for _, id := range []string{"prestop-exceeds-grace", "clb-connection-draining-off", "duplicate-key"} {
			if !got[id] {
				t.Errorf("%s: no %s in %s", c.path, id, out)
			}
		}
	}
	if code, out, stderr := run(t, "", "../../../check/testdata/seeds/seed003-manifests-fixed.yaml"); code != 0 || !strings.Contains(out, "0 errors") {
		t.Fatalf("fixed copy: exit %d, stderr %q\n%s", code, stderr, out)
	}
}
