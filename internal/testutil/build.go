package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rollsafe/rollsafe/timeline"
)

// BuildMain builds the main package pkg into a fresh temporary directory,
// for a TestMain: it returns the binary's path and a cleanup that removes
// the directory. The error carries the compiler's output.
func BuildMain(pkg string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "rollsafe-test-bin")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// RunWithBinary is a TestMain that builds the main package pkg into *bin
// first, then runs the tests with run (m.Run when nil, or e.g.
// controlplane.RunTests), removes the binary and exits with their code. A
// build that fails exits 1 with the compiler's output.
func RunWithBinary(m *testing.M, pkg string, bin *string, run func(*testing.M) int) {
	path, cleanup, err := BuildMain(pkg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = path
	if run == nil {
		run = (*testing.M).Run
	}
	code := run(m)
	cleanup()
	os.Exit(code)
}

// WriteTimeline writes recs as an NDJSON timeline at path.
func WriteTimeline(t testing.TB, path string, recs []*timeline.Record) string {
	t.Helper()
	w, err := timeline.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteTree writes files (path relative to a new temporary directory →
// content) and returns the directory.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
