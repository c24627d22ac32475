package check

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// objectsOf lists the input objects a workload's findings concern.
func objectsOf(w *workload.Workload) []*manifest.Object {
	objs := []*manifest.Object{w.Object}
	for _, list := range [][]*manifest.Object{w.Services, w.Ingresses, w.TargetGroupBindings, w.PDBs} {
		objs = append(objs, list...)
	}
	if w.NamespaceObject != nil {
		objs = append(objs, w.NamespaceObject)
	}
	return objs
}

// duplicateFindings reports the duplicate keys of objs not reported yet,
// grouped under group (the workload they belong to, or the object itself).
func duplicateFindings(group string, objs []*manifest.Object, reported map[*manifest.Object]bool, o workload.Options) []Finding {
	rule, _ := RuleByID("duplicate-key")
	var out []Finding
	for _, obj := range objs {
		if reported[obj] || len(obj.Duplicates) == 0 {
			continue
		}
		reported[obj] = true
		for _, d := range obj.Duplicates {
			fix, patches := duplicateFix(obj, d, o.DefaultNamespace)
			out = append(out, Finding{Rule: rule.ID, Severity: rule.Severity, Object: obj.Ref(o.DefaultNamespace),
				Workload: group, Fix: fix, Patches: patches, File: obj.Source.File, Line: d.Line,
				Message: fmt.Sprintf("%s gives %s twice (lines %d and %d): the second replaces the first, so %s is lost",
					obj.Ref(o.DefaultNamespace), fieldName(d), d.FirstLine, d.Line, lost(d))})
		}
	}
	return out
}

// fieldName is the duplicate's dotted path, spec.ports.
func fieldName(d manifest.DuplicateKey) string {
	return "`" + strings.Join(append(append([]string{}, d.Path...), d.Key), ".") + "`"
}

// lost says what the earlier value held.
func lost(d manifest.DuplicateKey) string {
	data, err := json.Marshal(d.FirstValue)
	if err != nil || d.FirstValue == nil {
		return "the earlier value"
	}
	s := string(data)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return "`" + s + "`"
}

// merged is the one value both keys meant: the two lists joined, or the
// two mappings merged (the later one's keys winning); false for scalars,
// where only the user knows which one they meant.
func merged(d manifest.DuplicateKey) (any, bool) {
	switch first := d.FirstValue.(type) {
	case []any:
		if second, ok := d.Value.([]any); ok {
			return append(append([]any{}, first...), second...), true
		}
	case map[string]any:
		if second, ok := d.Value.(map[string]any); ok {
			m := map[string]any{}
			for k, v := range first {
				m[k] = v
			}
			for k, v := range second {
				m[k] = v
			}
			return m, true
		}
	}
	return nil, false
}

// duplicateFix writes one key holding both values. The patch adds the
// earlier value back to the object, which holds the later one; it exists
// only where a strategic-merge patch can name the place (no list on the
// path: list items would need their merge keys).
func duplicateFix(obj *manifest.Object, d manifest.DuplicateKey, ns string) (string, []Patch) {
	head := fmt.Sprintf("# give %s once (lines %d and %d are one key):", fieldName(d), d.FirstLine, d.Line)
	v, ok := merged(d)
	for _, p := range d.Path {
		if _, err := strconv.Atoi(p); err == nil {
			ok = false // a list index
		}
	}
	if !ok {
		return head + "\n# keep the value you meant and delete the other; the second is the one in effect", nil
	}
	// As JSON decodes it (numbers float64), the form the object is patched
	// in: list items then match their merge keys (port 443 == 443.0).
	if b, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(b, &v)
	}
	patch := map[string]any{d.Key: v}
	for i := len(d.Path) - 1; i >= 0; i-- {
		patch = map[string]any{d.Path[i]: patch}
	}
	data, err := yaml.Marshal(patch)
	if err != nil {
		return head, nil
	}
	return head + "\n" + strings.TrimSuffix(string(data), "\n"), []Patch{{Object: obj.Ref(ns), Type: PatchStrategic, Patch: patch}}
}
