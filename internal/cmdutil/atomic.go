package cmdutil

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes the file a flag names through write: first to a
// temporary file in the same directory, renamed over path only once
// everything is written, so a failed run never leaves half a file where a
// good one was. A path that cannot be created (no such directory, no
// permission) is the flag's bad value, a usage error naming it; a failure
// while writing is not.
func WriteFileAtomic(flag, path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	var pe *fs.PathError // names the temporary file, not the user's
	if errors.As(err, &pe) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
		return UsageErrorf("%s %s: %w", flag, path, pe.Err)
	}
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
