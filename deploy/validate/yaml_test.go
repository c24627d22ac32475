package validate

import "testing"

// The reason for a YAML 1.2 parser: GitHub's `on:` key must stay a string.
// A YAML 1.1 parser turns it into true and the workflow schema then reports
// a missing "on" — or, worse, a schema that allows extra keys passes.
func TestParseYAMLKeepsOnAsString(t *testing.T) {
	v, err := ParseYAML("t.yml", []byte("on:\n  push: {}\nyes: no\nversion: 0.2\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %T, want a mapping", v)
	}
	if _, ok := m["on"]; !ok {
		t.Errorf("key on lost: %v", m)
	}
	if m["yes"] != "no" {
		t.Errorf("yes: %#v, want the string \"no\" (YAML 1.2)", m["yes"])
	}
}

func TestParseYAMLReportsWhere(t *testing.T) {
	_, err := ParseYAML("broken.yml", []byte("a: [1, 2\nb: c\n"))
	if err == nil {
		t.Fatal("no error for an unclosed flow sequence")
	}
	t.Log(err)
}
