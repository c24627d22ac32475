package cmdutil

import "testing"

func TestInvokedName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/rollsafe":         "rollsafe",
		"/home/u/bin/kubectl-rollsafe":    "kubectl rollsafe",
		"kubectl-rollsafe.exe":            "kubectl rollsafe",
		"/x/kubectl-rollsafe_with_dashes": "kubectl rollsafe-with-dashes",
	} {
		if got := InvokedName(in); got != want {
			t.Errorf("InvokedName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCounts(t *testing.T) {
	m := map[string]uint64{"b": 1, "a": 0, "z": 5, "y": 5, "new": 2}
	if got, want := Counts(m, []string{"a", "b"}), "b 1, y 5, z 5, new 2"; got != want {
		t.Fatalf("Counts = %q, want %q", got, want)
	}
	if got := Counts(map[string]uint64{"a": 0}, nil); got != "" {
		t.Fatalf("Counts of zeros = %q, want empty", got)
	}
}
