package validate

import (
	"io"

	"github.com/rhysd/actionlint"
)

// LintWorkflow runs actionlint (as a library, without shellcheck or
// pyflakes, so it needs nothing installed) on a GitHub Actions workflow.
// name is the path reported in errors.
func LintWorkflow(name string, content []byte) ([]*actionlint.Error, error) {
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever})
	if err != nil {
		return nil, err
	}
	// A name that is not a file on disk keeps actionlint from looking for a
	// repository config: the result depends on the workflow alone.
	return l.Lint("<workflow:"+name+">", content, nil)
}
