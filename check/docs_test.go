package check_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
)

// TestRuleDocs keeps docs/rules and the Rules list in step: every rule has
// a page titled with its ID and stating its severity, every page has a
// rule, and the index lists them all with their summaries. Run with
// ROLLSAFE_UPDATE_DOCS=1 to regenerate the index.
func TestRuleDocs(t *testing.T) {
	const dir = "../docs/rules"
	pages, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	seen := map[string]bool{}
	for _, p := range pages {
		id := strings.TrimSuffix(filepath.Base(p), ".md")
		if id == "README" {
			continue
		}
		seen[id] = true
		r, ok := check.RuleByID(id)
		if !ok {
			t.Errorf("%s: page for a rule that does not exist", p)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if !strings.HasPrefix(text, "# "+id+"\n") {
			t.Errorf("%s: must start with '# %s'", p, id)
		}
		if !strings.Contains(text, "\nSeverity: "+r.Severity.String()+"\n") {
			t.Errorf("%s: must state 'Severity: %s'", p, r.Severity)
		}
		if !strings.Contains(text, "## Sources\n\n- ") {
			t.Errorf("%s: must cite sources", p)
		}
	}
	var index strings.Builder
	index.WriteString("# rollsafe check rules\n\nGenerated from check.Rules by `ROLLSAFE_UPDATE_DOCS=1 go test ./check -run TestRuleDocs`.\n\n| rule | severity | what breaks |\n|---|---|---|\n")
	for _, r := range check.Rules {
		if !seen[r.ID] {
			t.Errorf("rule %s has no page %s/%s.md", r.ID, dir, r.ID)
		}
		index.WriteString("| [" + r.ID + "](" + r.ID + ".md) | " + r.Severity.String() + " | " + r.Summary + " |\n")
	}
	readme := filepath.Join(dir, "README.md")
	if os.Getenv("ROLLSAFE_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(readme, []byte(index.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(readme)
	if string(got) != index.String() {
		t.Errorf("%s is out of date: run ROLLSAFE_UPDATE_DOCS=1 go test ./check -run TestRuleDocs", readme)
	}
}
