package check_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/workload"
)

// lineOf is the 1-based line of the first line of file holding s, after
// the first line holding after ("" for the top).
func lineOf(t *testing.T, file, after, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	from := 0
	if after != "" {
		from = slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, after) })
	}
	for i := max(from, 0); i < len(lines); i++ {
		if strings.Contains(lines[i], s) {
			return i + 1
		}
	}
	t.Fatalf("%s: no line holds %q after %q", file, s, after)
	return 0
}

func findingOf(res *check.Result, rule string) *check.Finding {
	for i := range res.Findings {
		if res.Findings[i].Rule == rule {
			return &res.Findings[i]
		}
	}
	return nil
}

// Each nginx rule's finding on its broken fixture: rule, severity, the
// file:line of the setting, what the message must say; then every fix of
// the run applied, the rule is gone and no error is left.
func TestNginxRuleFindings(t *testing.T) {
	const dir = "testdata/cases/"
	for _, c := range []struct {
		file, rule     string
		sev            check.Severity
		after, at      string // the finding's line: the first holding at, after after
		says           []string
		fixedStaysInfo bool // an info with no patch: the fix is how one probes
	}{
		{file: "nginx-prestop-too-short-hit.yaml", rule: "nginx-prestop-too-short", sev: check.Error, at: "preStop:",
			says: []string{"preStop waits 2s, less than ingress-nginx's sync lag", "Ingress/shop/api", "its propagation does not apply"}},
		{file: "nginx-upstream-keepalive-hit.yaml", rule: "nginx-upstream-keepalive", sev: check.Warning, at: "rollsafe.dev/app-idle-timeout",
			says: []string{"keeps idle connections 75s", "for 90s (upstream-keepalive-timeout, from ConfigMap/ingress-nginx/ingress-nginx-controller line ",
				"never for a POST, LOCK or PATCH"}},
		{file: "nginx-retries-hide-failures-hit.yaml", rule: "nginx-retries-hide-failures", sev: check.Info,
			at: "nginx.ingress.kubernetes.io/proxy-next-upstream:", fixedStaysInfo: true,
			says: []string{`proxy-next-upstream "error timeout http_502", from the Ingress's annotation; up to 2 tries`, "probe that sends only GETs"}},
		{file: "nginx-default-retries-hit.yaml", rule: "nginx-retries-hide-failures", sev: check.Info,
			after: "kind: Ingress", at: "metadata:", fixedStaysInfo: true,
			says: []string{`proxy-next-upstream "error timeout", the ingress-nginx default; up to 3 tries`}},
	} {
		t.Run(c.file, func(t *testing.T) {
			o := workload.DefaultOptions()
			objs, res := loadAndCheck(t, dir+c.file, o)
			f := findingOf(res, c.rule)
			if f == nil {
				t.Fatalf("no %s in %v", c.rule, rulesOf(res))
			}
			if want := lineOf(t, dir+c.file, c.after, c.at); f.Severity != c.sev || f.File != dir+c.file || f.Line != want {
				t.Errorf("%s at %s:%d; want %s at line %d", f.Severity, f.File, f.Line, c.sev, want)
			}
			for _, s := range c.says {
				if !strings.Contains(f.Message, s) {
					t.Errorf("message lacks %q:\n%s", s, f.Message)
				}
			}
			if c.rule == "nginx-upstream-keepalive" {
				cm := lineOf(t, dir+c.file, "kind: ConfigMap", "upstream-keepalive-timeout:")
				if !strings.Contains(f.Message, "line "+strconv.Itoa(cm)+")") {
					t.Errorf("message does not name the ConfigMap's line %d: %s", cm, f.Message)
				}
			}
			_, res2 := fixAndCheck(t, objs, res, o)
			if got := findingOf(res2, c.rule); (got != nil) != c.fixedStaysInfo {
				t.Errorf("after every fix: %s still there %v, want %v", c.rule, got != nil, c.fixedStaysInfo)
			}
			if check.Failed(res2.Findings, check.Warning) {
				t.Errorf("after every fix: %v", rulesOf(res2))
			}
		})
	}
}

// An nginx-only workload with sound settings gets only the info about
// retries: no rule sized for a cloud load balancer misfires on it.
func TestNginxRouteNoMisfire(t *testing.T) {
	for _, f := range []string{"nginx-default-retries-hit.yaml", "nginx-prestop-too-short-miss.yaml", "nginx-upstream-keepalive-miss.yaml"} {
		res := checkFiles(t, workload.DefaultOptions(), "testdata/cases/"+f)
		if got := rulesOf(res); !slices.Equal(got, []string{"nginx-retries-hide-failures"}) {
			t.Errorf("%s: want only nginx-retries-hide-failures, got %v", f, got)
		}
	}
	res := checkFiles(t, workload.DefaultOptions(), "testdata/cases/nginx-retries-hide-failures-miss.yaml")
	if len(res.Findings) > 0 {
		t.Errorf("proxy-next-upstream off: want no finding, got %v", rulesOf(res))
	}
}

// Without a preStop, the nginx-only workload's prestop-missing names the
// sync lag, not the ALB's controller lag and P, and its fix passes.
func TestNginxPreStopMissing(t *testing.T) {
	data, err := os.ReadFile("testdata/cases/nginx-prestop-too-short-miss.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hook := "        lifecycle:\n          preStop:\n            sleep:\n              seconds: 5\n"
	if !strings.Contains(string(data), hook) {
		t.Fatal("fixture changed: no preStop block to cut")
	}
	file := filepath.Join(t.TempDir(), "nohook.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), hook, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	o := workload.DefaultOptions()
	objs, res := loadAndCheck(t, file, o)
	f := findingOf(res, "prestop-missing")
	if f == nil || !strings.Contains(f.Message, "(ingress-nginx's sync lag ") || strings.Contains(f.Message, "propagation") {
		t.Fatalf("prestop-missing: %+v", f)
	}
	if !strings.Contains(f.Fix, "seconds: 7") { // ceil(4.33 s) + the 2 s margin
		t.Errorf("fix %q: want the sync lag's preStop, 7 s", f.Fix)
	}
	if _, res2 := fixAndCheck(t, objs, res, o); check.Failed(res2.Findings, check.Warning) {
		t.Errorf("after the fix: %v", rulesOf(res2))
	}
}

// The recommendation for pods only nginx reaches: the preStop covers the
// sync lag (no deregistration delay to outlast), and the app's keep-alive
// must outlast nginx's upstream keep-alive; applied, nothing fires.
func TestNginxRecommendation(t *testing.T) {
	o := workload.DefaultOptions()
	res := checkFiles(t, o, "testdata/cases/nginx-upstream-keepalive-hit.yaml")
	w := res.Workloads[0]
	rec := check.Recommend(w, o)
	if rec.MinPreStop != 5*time.Second || rec.PreStop != 7*time.Second || rec.DeregistrationDelay != 0 ||
		rec.MinAppIdleTimeout != 91*time.Second || len(rec.Settings) != 0 {
		t.Errorf("recommendation %+v", rec)
	}
	if len(rec.Inputs) != 2 || rec.Inputs[0].Name != "ingress-nginx sync lag" || rec.Inputs[0].Flag != "" {
		t.Errorf("inputs %+v", rec.Inputs)
	}
	w.Containers[0].PreStop = workload.PreStop{Kind: "sleep", Duration: rec.PreStop, Known: true}
	w.TerminationGracePeriod = rec.TerminationGracePeriod
	w.AppIdleTimeout = rec.MinAppIdleTimeout
	for _, f := range check.Run(w, o) {
		if f.Severity > check.Info {
			t.Errorf("after the recommendation: %s: %s", f.Rule, f.Message)
		}
	}
}
