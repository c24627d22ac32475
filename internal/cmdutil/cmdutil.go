// Package cmdutil holds what every rollsafe command shares: the I/O streams
// (with a settable TTY so tests can see the progress line), the exit-code
// policy (Code, over the error types here), the output-format flag, the
// Kubernetes connection flags, the progress line and the atomic file
// writer.
package cmdutil

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

// IOStreams are the streams a command writes to.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY says whether ErrOut is a terminal: live progress lines are drawn
	// only then, so piped output and CI logs stay clean.
	ErrTTY bool
}

// System returns the process's own streams.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// Factory is what the commands get from the root: streams and identity.
type Factory struct {
	IO *IOStreams
	// Name is how the user invokes us: "rollsafe" or "kubectl rollsafe".
	Name    string
	Version string
}

// InvokedName maps argv[0] to the name shown in help: installed as
// kubectl-rollsafe, kubectl runs us as a plugin and users type "kubectl rollsafe".
func InvokedName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if strings.HasPrefix(base, "kubectl-") {
		return "kubectl " + strings.ReplaceAll(strings.TrimPrefix(base, "kubectl-"), "_", "-")
	}
	return "rollsafe"
}

// Output is the value of a command's --output flag.
type Output string

const (
	OutputText  Output = "text"
	OutputJSON  Output = "json"
	OutputSARIF Output = "sarif"
)

// ParseOutput checks an --output value against the formats a command offers.
func ParseOutput(v string, allowed ...Output) (Output, error) {
	var names []string
	for _, a := range allowed {
		if Output(v) == a {
			return a, nil
		}
		names = append(names, string(a))
	}
	return "", UsageErrorf("--output %q: want one of %s", v, strings.Join(names, ", "))
}

// WriteJSON writes v as one indented JSON document: the -o json of the
// commands that print a single summary (soak and report stream compact
// lines instead).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
