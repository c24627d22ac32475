package check_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// schemas give the strategic-merge patch its merge keys (containers by name).
var schemas = map[string]func() any{
	"Deployment":          func() any { return &appsv1.Deployment{} },
	"StatefulSet":         func() any { return &appsv1.StatefulSet{} },
	"Service":             func() any { return &corev1.Service{} },
	"Namespace":           func() any { return &corev1.Namespace{} },
	"Ingress":             func() any { return &networkingv1.Ingress{} },
	"PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
}

// applyFixes applies the patches of every finding to the objects, as a
// user pasting every fix of one run would, and returns the manifests.
func applyFixes(t *testing.T, objs []*manifest.Object, fs []check.Finding) []byte {
	t.Helper()
	docs := map[string]map[string]any{}
	kinds := map[string]string{}
	var order []string
	for _, o := range objs {
		if o.Obj == nil {
			continue
		}
		data, err := json.Marshal(o.Obj)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		m["apiVersion"], m["kind"] = o.APIVersion, o.Kind
		ref := o.Ref("default")
		docs[ref], kinds[ref] = m, o.Kind
		order = append(order, ref)
	}
	for _, f := range fs {
		for _, p := range f.Patches {
			orig, ok := docs[p.Object]
			switch {
			case p.Type == check.PatchCreate && !ok:
				docs[p.Object], kinds[p.Object] = p.Patch, p.Patch["kind"].(string)
				order = append(order, p.Object)
				continue
			case !ok:
				t.Fatalf("%s: patch for %s, which is not in the input", f.Rule, p.Object)
			}
			schema, known := schemas[kinds[p.Object]]
			if !known {
				t.Fatalf("%s: no schema for %s", f.Rule, p.Object)
			}
			merged, err := strategicpatch.StrategicMergeMapPatch(orig, p.Patch, schema())
			if err != nil {
				t.Fatalf("%s: patch %s: %v", f.Rule, p.Object, err)
			}
			docs[p.Object] = merged
		}
	}
	var items []any
	for _, ref := range order {
		items = append(items, docs[ref])
	}
	out, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loadAndCheck reads one manifest and checks it.
func loadAndCheck(t *testing.T, path string, o workload.Options) ([]*manifest.Object, *check.Result) {
	t.Helper()
	objs, err := manifest.Load([]string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Check(objs, o)
	if err != nil {
		t.Fatal(err)
	}
	return objs, res
}

// fixAndCheck applies every fix of res to objs and checks the result.
func fixAndCheck(t *testing.T, objs []*manifest.Object, res *check.Result, o workload.Options) ([]*manifest.Object, *check.Result) {
	t.Helper()
	fixed := applyFixes(t, objs, res.Findings)
	objs2, err := manifest.Parse("fixed.json", fixed)
	if err != nil {
		t.Fatalf("%v\n%s", err, fixed)
	}
	res2, err := check.Check(objs2, o)
	if err != nil {
		t.Fatal(err)
	}
	return objs2, res2
}

// TestFixesCompose applies every fix of a run to each corpus manifest and
// checks again: no error finding is left, whatever the options. Before,
// pasting prestop-missing's `sleep 30` under the default 30 s grace made
// the next run report prestop-exceeds-grace.
func TestFixesCompose(t *testing.T) {
	cases, _ := filepath.Glob("testdata/cases/*")
	seeds, _ := filepath.Glob("testdata/seeds/*")
	for _, o := range []workload.Options{workload.DefaultOptions(),
		func() workload.Options { o := workload.DefaultOptions(); o.MaxRequestDuration = 120e9; return o }(),
		func() workload.Options {
			o := workload.DefaultOptions()
			o.Propagation = 40e9
			o.ShutdownTime = 5e9
			return o
		}(),
	} {
		for _, p := range append(cases, seeds...) {
			t.Run(filepath.Base(p), func(t *testing.T) {
				objs, res := loadAndCheck(t, p, o)
				_, res2 := fixAndCheck(t, objs, res, o)
				for _, f := range res2.Findings {
					if f.Severity == check.Error {
						t.Errorf("P %v, longest request %v: after every fix of %v: %s: %s", o.Propagation, o.MaxRequestDuration, rulesOf(res), f.Rule, f.Message)
					}
				}
			})
		}
	}
}

// prestop-missing's fix carries the grace period its sleep needs, in the
// text a user pastes and in the patch.
func TestPreStopFixCarriesGrace(t *testing.T) {
	res := checkFiles(t, workload.DefaultOptions(), "testdata/cases/no-service-in-input-hit.yaml")
	i := slices.IndexFunc(res.Findings, func(f check.Finding) bool { return f.Rule == "prestop-missing" })
	if i < 0 {
		t.Fatalf("no prestop-missing in %v", rulesOf(res))
	}
	f := res.Findings[i]
	rec := check.Recommend(res.Workloads[0], workload.DefaultOptions())
	if !res.Workloads[0].GraceDefaulted || rec.TerminationGracePeriod <= 30e9 {
		t.Fatalf("fixture: want the default 30s grace and a preStop that needs more, got %+v", rec)
	}
	want := "terminationGracePeriodSeconds: " + strings.TrimSuffix(rec.TerminationGracePeriod.String(), "s")
	if !strings.Contains(f.Fix, want) || len(f.Patches) != 1 {
		t.Errorf("fix %q lacks %q; patches %v", f.Fix, want, f.Patches)
	}
}

// A Deployment on its own (its Service in another file) that declares a
// port is judged as served, and every finding says why; with Services in
// the input that do not select it, one info finding says the load-balancer
// rules were skipped.
func TestWorkloadWithoutServiceInInput(t *testing.T) {
	res := checkFiles(t, workload.DefaultOptions(), "testdata/cases/no-service-in-input-hit.yaml")
	if len(res.Findings) == 0 {
		t.Fatal("a lone Deployment with no probe and no preStop got no finding")
	}
	for _, f := range res.Findings {
		if !strings.HasSuffix(f.Message, "; no Service in the input selects it; judged as served because it declares port 8000") {
			t.Errorf("%s: message does not say why it was judged: %q", f.Rule, f.Message)
		}
	}
	res = checkFiles(t, workload.DefaultOptions(), "testdata/cases/unserved-hit.yaml")
	if got := rulesOf(res); !slices.Equal(got, []string{"unserved"}) {
		t.Fatalf("want only unserved, got %v", got)
	}
	if f := res.Findings[0]; f.Severity != check.Info || !strings.Contains(f.Message, "load-balancer rules") || !strings.Contains(f.Message, "Services in the input (1)") {
		t.Errorf("finding %+v", f)
	}
}

// The text a user pastes says what the patch does: each YAML document of
// a fix is its patch (a Namespace or PDB written whole is compared only
// when it is created whole).
func TestFixTextMatchesPatches(t *testing.T) {
	cases, _ := filepath.Glob("testdata/cases/*")
	n := 0
	for _, p := range cases {
		for _, f := range checkFiles(t, workload.DefaultOptions(), p).Findings {
			if len(f.Patches) == 0 {
				continue
			}
			var docs []string // a comment alone is a fix no patch can express
			for _, d := range strings.Split(f.Fix, "\n---\n") {
				if slices.ContainsFunc(strings.Split(d, "\n"), func(l string) bool { return !strings.HasPrefix(l, "#") }) {
					docs = append(docs, d)
				}
			}
			if len(docs) != len(f.Patches) {
				t.Errorf("%s %s: %d documents, %d patches", p, f.Rule, len(docs), len(f.Patches))
				continue
			}
			for i, d := range docs {
				pa := f.Patches[i]
				if pa.Type == check.PatchStrategic && strings.Contains(d, "kind:") {
					continue
				}
				var text any
				if err := yaml.Unmarshal([]byte(d), &text); err != nil {
					t.Fatalf("%s %s: fix is not YAML: %v\n%s", p, f.Rule, err, d)
				}
				a, _ := json.Marshal(text)
				b, _ := json.Marshal(pa.Patch)
				if string(a) != string(b) {
					t.Errorf("%s %s: text %s, patch %s", p, f.Rule, a, b)
				}
				n++
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d fixes compared", n)
	}
}

// Seed 003's manifests fail on its three broken links; its fixed copy is
// what pasting check's own fixes gives (compared object by object with
// applyFixes' result) and passes.
func TestSeed003ManifestsFixedCopy(t *testing.T) {
	const seed, fixedCopy = "testdata/seeds/seed003-manifests.yaml", "testdata/seeds/seed003-manifests-fixed.yaml"
	o := workload.DefaultOptions()
	objs, res := loadAndCheck(t, seed, o)
	for _, id := range []string{"prestop-exceeds-grace", "clb-connection-draining-off", "duplicate-key"} {
		if !slices.Contains(rulesOf(res), id) {
			t.Errorf("want %s, got %v", id, rulesOf(res))
		}
	}
	data, _ := os.ReadFile(seed)
	lines := strings.Split(string(data), "\n")
	var portsAt []int
	for i, l := range lines {
		if l == "  ports:" {
			portsAt = append(portsAt, i+1)
		}
	}
	i := slices.IndexFunc(res.Findings, func(f check.Finding) bool { return f.Rule == "duplicate-key" })
	if f := res.Findings[i]; len(portsAt) != 2 || f.File != seed || f.Line != portsAt[1] || !strings.Contains(f.Message, `"port":80`) {
		t.Errorf("duplicate-key at %s:%d (want line %v): %s", f.File, f.Line, portsAt, f.Message)
	}

	fixed, res2 := fixAndCheck(t, objs, res, o)
	written, res3 := loadAndCheck(t, fixedCopy, o)
	for _, r := range []*check.Result{res2, res3} {
		if check.Failed(r.Findings, check.Error) {
			t.Errorf("the fixes or the fixed copy still fail: %v", rulesOf(r))
		}
	}
	want := map[string]string{}
	for _, w := range written {
		if w.Kind != "Ingress" { // its pre-v1 apiVersion does not survive applyFixes' JSON
			b, _ := json.Marshal(w.Obj)
			want[w.Ref("default")] = string(b)
		}
	}
	for _, f := range fixed {
		if got, ok := want[f.Ref("default")]; ok {
			if b, _ := json.Marshal(f.Obj); string(b) != got {
				t.Errorf("%s: the fixed copy differs from the pasted fixes:\n%s\n%s", f.Ref("default"), got, b)
			}
			delete(want, f.Ref("default"))
		}
	}
	if len(want) > 0 {
		t.Errorf("not produced by the fixes: %v", want)
	}
}
