package validate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// RepoRoot is the rollsafe checkout this module lives in (deploy/validate
// is two levels down), found from this source file so tests work from any
// working directory.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "../.."
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Path joins elements onto the repository root.
func Path(elem ...string) string {
	return filepath.Join(append([]string{RepoRoot()}, elem...)...)
}

// ErrNoSharedSchemas means the public schemas kept beside the repository
// (<repo>/../shared/schemas) are not there, as in a user's clone.
var ErrNoSharedSchemas = errors.New("shared schemas not found")

// SharedSchema locates one of the public JSON schemas (SchemaStore's
// github-workflow.json, CircleCI's and GitLab's) that the project keeps in
// <repo>/../shared/schemas rather than in the repository.
func SharedSchema(name string) (string, error) {
	p := filepath.Join(RepoRoot(), "..", "shared", "schemas", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s is absent (the schemas live beside the repository, in ../shared/schemas, not in it)", ErrNoSharedSchemas, p)
	}
	return p, nil
}
