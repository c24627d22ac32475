package cmdutil_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.html")
	if err := os.WriteFile(path, []byte("good"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves the good file and no temporary one.
	boom := errors.New("boom")
	err := cmdutil.WriteFileAtomic("--html", path, func(w io.Writer) error { io.WriteString(w, "half"); return boom })
	if !errors.Is(err, boom) || cmdutil.Code(err) != cmdutil.ExitRuntime {
		t.Fatalf("write error: %v (exit %d)", err, cmdutil.Code(err))
	}
	if b, _ := os.ReadFile(path); string(b) != "good" {
		t.Fatalf("file now %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	// A directory that does not exist is the flag's bad value.
	bad := filepath.Join(dir, "no", "r.html")
	err = cmdutil.WriteFileAtomic("--html", bad, func(io.Writer) error { return nil })
	if cmdutil.Code(err) != cmdutil.ExitUsage || err.Error() != "--html "+bad+": no such file or directory" {
		t.Fatalf("missing dir: %v (exit %d)", err, cmdutil.Code(err))
	}
}
