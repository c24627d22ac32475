package defaults_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/defaults"
)

var (
	numberRE     = regexp.MustCompile(`\d+(?:\.\d+)?`)
	identifierRE = regexp.MustCompile("`(?:defaults\\.)?([A-Za-z]+)`")
)

func fact(name string) (defaults.Fact, bool) {
	for _, f := range defaults.Table {
		if f.Name == name {
			return f, true
		}
	}
	return defaults.Fact{}, false
}

// TestLabDocAgrees holds docs/lab.md's parameter table to Table: a row
// whose first cell names facts (`defaults.X`, then `Y` for more) must state
// their values in its second cell, numbers in the order named.
func TestLabDocAgrees(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "docs", "lab.md"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`defaults.") {
			continue
		}
		where := "docs/lab.md:" + strconv.Itoa(i+1)
		var nums []defaults.Fact
		for _, m := range identifierRE.FindAllStringSubmatch(cells[1], -1) {
			f, ok := fact(m[1])
			switch {
			case !ok && strings.HasPrefix(m[0], "`defaults."):
				t.Errorf("%s: defaults.%s is not in defaults.Table", where, m[1])
			case !ok:
			case f.IsName():
				if !strings.Contains(cells[2], f.Value) {
					t.Errorf("%s: states %q, want defaults.%s = %q", where, strings.TrimSpace(cells[2]), f.Name, f.Value)
				}
				checked++
			default:
				nums = append(nums, f)
			}
		}
		stated := numberRE.FindAllString(cells[2], -1)
		for j, f := range nums {
			want, _ := f.Number()
			if j >= len(stated) {
				t.Errorf("%s: states no value for defaults.%s (%s)", where, f.Name, f.Value)
				continue
			}
			if got, _ := strconv.ParseFloat(stated[j], 64); got != want {
				t.Errorf("%s: states %s for defaults.%s, want %s", where, stated[j], f.Name, f.Value)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d values of docs/lab.md checked: the table rows no longer name defaults.X", checked)
	}
}

// TestRuleDocsAgree holds the defaults docs/rules and docs/lab.md state in
// prose to Table. A statement is a fact's term (Fact.Terms) followed, in
// the same clause or a parenthesis saying "default", by a value:
// "`deregistration_delay.timeout_seconds`, default 300 s",
// "gate re-check (every 15 s by default)", "(defaults: ...,
// healthcheck-interval-seconds 15, ...)". The clause ends at ; ) | . or a
// line break, or where the next term begins.
func TestRuleDocsAgree(t *testing.T) {
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "rules", "*.md"))
	pages = append(pages, filepath.Join(root, "docs", "lab.md"))
	checked := 0
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stated := map[string]bool{}
		for _, s := range statements(string(data)) {
			checked++
			stated[s.fact.Name] = true
			if s.value != s.fact.Value && !sameNumber(s.value, s.fact) {
				t.Errorf("%s:%d: %q states %s for defaults.%s, want %s", p, s.line, s.text, s.value, s.fact.Name, s.fact.Value)
			}
		}
		for _, name := range mustState[filepath.Base(p)] {
			if !stated[name] {
				t.Errorf("%s: states no default for defaults.%s that this test can read (its term, then \"default\" and the value)", p, name)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d stated defaults found in docs: the terms no longer match the docs", checked)
	}
}

// mustState lists, per page, the defaults it must state where this test
// reads them, so a page reworded past the terms cannot pass unchecked.
var mustState = map[string][]string{
	"nginx-prestop-too-short.md":     {"NginxSyncRateLimit"},
	"prestop-too-short.md":           {"KubeProxyMinSyncPeriod", "ControllerLag"},
	"nginx-upstream-keepalive.md":    {"NginxUpstreamKeepaliveTimeout", "NginxUpstreamKeepaliveConnections"},
	"nginx-retries-hide-failures.md": {"NginxProxyNextUpstreamTries"},
}

func sameNumber(v string, f defaults.Fact) bool {
	want, ok := f.Number()
	got, err := strconv.ParseFloat(v, 64)
	return ok && err == nil && got == want
}

type statement struct {
	fact        defaults.Fact
	value, text string
	line        int
}

type mention struct {
	fact       defaults.Fact
	start, end int
}

// statements finds every stated default of a known fact in text.
func statements(text string) []statement {
	lower := strings.ToLower(text)
	var ms []mention
	for _, f := range defaults.Table {
		for _, term := range f.Terms {
			term = strings.ToLower(term)
			for i := 0; ; {
				j := strings.Index(lower[i:], term)
				if j < 0 {
					break
				}
				if start := i + j; start == 0 || !wordChar(lower[start-1]) {
					ms = append(ms, mention{f, start, start + len(term)})
				}
				i += j + len(term)
			}
		}
	}
	sort.Slice(ms, func(a, b int) bool { return ms[a].start < ms[b].start })
	var out []statement
	for k, m := range ms {
		end := len(text)
		if k+1 < len(ms) && ms[k+1].start >= m.end {
			end = ms[k+1].start
		}
		clause := text[m.end:end]
		if i := strings.IndexAny(clause, ";)|\n"); i >= 0 {
			clause = clause[:i]
		}
		if i := strings.Index(clause, ". "); i >= 0 {
			clause = clause[:i]
		}
		if !saysDefault(text[m.start:m.end]+clause) && !inDefaultsParen(lower, m.start) {
			continue
		}
		v := firstValue(clause, m.fact)
		if v == "" {
			continue
		}
		said := strings.TrimSpace(text[m.start:m.end] + clause)
		if r := []rune(said); len(r) > 80 {
			said = string(r[:80]) + "…"
		}
		out = append(out, statement{fact: m.fact, value: v, text: said,
			line: strings.Count(text[:m.start], "\n") + 1})
	}
	return out
}

// wordChar says whether c continues a term: a match inside a longer word
// (periodSeconds in terminationGracePeriodSeconds) is not a mention.
func wordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// saysDefault says whether text speaks of a default; `defaults.X`, the Go
// name of a fact, does not count.
func saysDefault(text string) bool {
	return strings.Contains(strings.ReplaceAll(strings.ToLower(text), "defaults.", ""), "default")
}

// inDefaultsParen says whether position i sits in a list of defaults: a
// parenthesis that says "default" before i, in the same clause (no ; or
// quotation between).
func inDefaultsParen(lower string, i int) bool {
	open := strings.LastIndex(lower[:i], "(")
	if open < 0 || strings.ContainsAny(lower[open:i], ");\"") {
		return false
	}
	return saysDefault(lower[open:i])
}

// firstValue is the first number in clause, or for a name its first word.
func firstValue(clause string, f defaults.Fact) string {
	if !f.IsName() {
		return numberRE.FindString(clause)
	}
	words := strings.Fields(clause)
	if len(words) == 0 {
		return ""
	}
	return strings.Trim(words[0], "`,")
}
