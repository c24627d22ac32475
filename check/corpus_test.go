package check_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

func checkFiles(t *testing.T, o workload.Options, paths ...string) *check.Result {
	t.Helper()
	objs, err := manifest.Load(paths, nil)
	if err != nil {
		t.Fatalf("load %v: %v", paths, err)
	}
	res, err := check.Check(objs, o)
	if err != nil {
		t.Fatalf("check %v: %v", paths, err)
	}
	return res
}

func rulesOf(res *check.Result) []string {
	var ids []string
	for _, f := range res.Findings {
		ids = append(ids, f.Rule)
	}
	return ids
}

// expectation reads a fixture's first line: "# want: a,b", "# want: none"
// or "# not: a,b". JSON cannot hold comments: *-clean.json wants none.
func expectation(t *testing.T, path string) (want, not []string, none bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, "-clean.json") {
		return nil, nil, true
	}
	first, _, _ := strings.Cut(string(data), "\n")
	switch {
	case first == "# want: none":
		return nil, nil, true
	case strings.HasPrefix(first, "# want: "):
		return strings.Split(strings.TrimPrefix(first, "# want: "), ","), nil, false
	case strings.HasPrefix(first, "# not: "):
		return nil, strings.Split(strings.TrimPrefix(first, "# not: "), ","), false
	}
	t.Fatalf("%s: first line must be '# want: ...' or '# not: ...'", path)
	return
}

// TestCases runs every hand-written fixture: each hits a rule or just
// misses it, as its first line says.
func TestCases(t *testing.T) {
	paths, _ := filepath.Glob("testdata/cases/*")
	if len(paths) < 20 {
		t.Fatalf("want at least 20 cases, have %d", len(paths))
	}
	hit := map[string]bool{}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			want, not, none := expectation(t, p)
			got := rulesOf(checkFiles(t, workload.DefaultOptions(), p))
			if none && len(got) > 0 {
				t.Fatalf("want no findings, got %v", got)
			}
			for _, id := range append(slices.Clone(want), not...) {
				if _, ok := check.RuleByID(id); !ok {
					t.Fatalf("unknown rule %q in expectation", id)
				}
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					t.Errorf("want %s, got %v", id, got)
				}
				hit[id] = true
			}
			for _, id := range not {
				if slices.Contains(got, id) {
					t.Errorf("want no %s, got %v", id, got)
				}
			}
		})
	}
	for _, r := range check.Rules {
		if !hit[r.ID] {
			t.Errorf("no case hits rule %s", r.ID)
		}
	}
}

// The seed 003 Deployment: sleep 61 with the default 30 s grace.
func TestSeed003PreStopExceedsGrace(t *testing.T) {
	res := checkFiles(t, workload.DefaultOptions(), "testdata/seeds/seed003-dummy.yaml")
	var f *check.Finding
	for i := range res.Findings {
		if res.Findings[i].Rule == "prestop-exceeds-grace" {
			f = &res.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("want prestop-exceeds-grace, got %v", rulesOf(res))
	}
	if f.Severity != check.Error || f.Object != "Deployment/default/qos-dummy" {
		t.Errorf("finding = %+v", f)
	}
	for _, s := range []string{"61s", "default 30s"} {
		if !strings.Contains(f.Message, s) {
			t.Errorf("message %q lacks %q", f.Message, s)
		}
	}
	// The line of lifecycle.preStop in the fixture.
	data, _ := os.ReadFile("testdata/seeds/seed003-dummy.yaml")
	wantLine := slices.IndexFunc(strings.Split(string(data), "\n"), func(l string) bool { return strings.TrimSpace(l) == "preStop:" }) + 1
	if f.Line != wantLine || f.File != "testdata/seeds/seed003-dummy.yaml" {
		t.Errorf("located at %s:%d, want line %d", f.File, f.Line, wantLine)
	}
	// preStop 61 s, then kube-proxy-keepalive's drain of 65 s (past the
	// Classic ELB's 60 s idle timeout) and the longest request (30 s by
	// default), then 1 s: 157 s, which every fix touching the grace writes.
	if !strings.Contains(f.Fix, "terminationGracePeriodSeconds: 157") {
		t.Errorf("fix %q", f.Fix)
	}
	if !slices.Contains(rulesOf(res), "readiness-gate-unsupported") {
		t.Errorf("the Classic ELB's instance targets should be reported: %v", rulesOf(res))
	}
}

var timingRules = []string{"prestop-missing", "prestop-exceeds-grace", "prestop-too-short",
	"deregistration-delay-too-short", "deregistration-delay-vs-prestop", "app-idle-timeout-too-short",
	"shutdown-exceeds-grace", "readiness-gate-missing"}

// The seeds' recommended snippet (grace 50 > preStop 40 > delay 35, gate on)
// passes every timing rule for requests up to 18 s at the default P 17 s
// (delay 35 ≥ P + 18), and fails for the default 30 s longest request: a
// default that drives the verdict.
func TestSeedsRecommendedPassTimingRules(t *testing.T) {
	o := workload.DefaultOptions()
	if res := checkFiles(t, o, "testdata/seeds/seeds-recommended.yaml"); !slices.Contains(rulesOf(res), "deregistration-delay-too-short") {
		t.Errorf("longest request 30s: want deregistration-delay-too-short, got %v", rulesOf(res))
	}
	o.MaxRequestDuration = 18e9
	res := checkFiles(t, o, "testdata/seeds/seeds-recommended.yaml")
	for _, f := range res.Findings {
		if slices.Contains(timingRules, f.Rule) {
			t.Errorf("timing rule fired: %s: %s", f.Rule, f.Message)
		}
	}
	w := res.Workloads[0]
	if w.Containers[0].PreStop.Duration.Seconds() != 40 || w.Routes[0].DeregistrationDelay.Seconds() != 35 ||
		w.TerminationGracePeriod.Seconds() != 50 || !w.GateActive() {
		t.Errorf("resolved %+v %+v", w.Containers[0].PreStop, w.Routes[0])
	}
}

// Applying every fix of a broken workload's recommendation makes it pass:
// the recommended numbers are consistent with the rules.
func TestRecommendationPasses(t *testing.T) {
	o := workload.DefaultOptions()
	for _, extra := range []workload.Options{{}, {MaxRequestDuration: 120e9}, {Propagation: 40e9}} {
		oo := o
		if extra.MaxRequestDuration > 0 {
			oo.MaxRequestDuration = extra.MaxRequestDuration
		}
		if extra.Propagation > 0 {
			oo.Propagation = extra.Propagation
		}
		res := checkFiles(t, oo, "testdata/cases/clean.yaml")
		w := res.Workloads[0]
		rec := check.Recommend(w, oo)
		w.Containers[0].PreStop = workload.PreStop{Kind: "sleep", Duration: rec.PreStop, Known: true}
		w.TerminationGracePeriod = rec.TerminationGracePeriod
		w.Routes[0].DeregistrationDelay = rec.DeregistrationDelay
		w.AppIdleTimeout = rec.MinAppIdleTimeout
		for _, f := range check.Run(w, oo) {
			t.Errorf("options %+v: after the recommendation: %s: %s", extra, f.Rule, f.Message)
		}
	}
}

func TestFailed(t *testing.T) {
	fs := []check.Finding{{Severity: check.Warning}}
	if check.Failed(fs, check.Error) || !check.Failed(fs, check.Warning) || !check.Failed(fs, check.Info) {
		t.Fatal("threshold")
	}
	if check.Failed(nil, check.Info) {
		t.Fatal("no findings must pass")
	}
}
