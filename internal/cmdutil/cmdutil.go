// Package cmdutil holds what every rollsafe command shares: the I/O streams
// (with a settable TTY so tests can see the progress line), the exit-code
// contract, and the output-format flag.
package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

// Exit codes, decided in one place (Code).
const (
	ExitOK      = 0 // ran and everything was within budget
	ExitFailed  = 1 // ran, and the gate failed: failures past the budget, findings past the threshold
	ExitUsage   = 2 // bad flag, bad argument, bad input file
	ExitRuntime = 3 // could not do the job: a server would not start, the network failed
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

// ExitError carries an exit code with the message to print.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// UsageErrorf reports a bad flag, argument or input: exit 2.
func UsageErrorf(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// Failedf reports a run whose gate failed: exit 1.
func Failedf(format string, a ...any) error {
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf(format, a...)}
}

// ErrSilent ends a command with exit 1 after it has already said why.
var ErrSilent = &ExitError{Code: ExitFailed, Err: errors.New("")}

// Code maps an error returned by a command to the process exit code.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitRuntime
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
