package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/aws/smithy-go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Exit codes, decided in one place (Code).
const (
	ExitOK      = 0 // ran and everything was within budget
	ExitFailed  = 1 // ran, and the gate failed: failures past the budget, findings past the threshold
	ExitUsage   = 2 // bad flag, bad argument, bad input file
	ExitRuntime = 3 // could not do the job: a server would not start, the network failed, the cluster refused us
)

// UsageError is a bad flag, argument or input the user can fix in the
// invocation: exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// GateError is a run that worked and whose gate failed: exit 1.
type GateError struct{ Err error }

func (e *GateError) Error() string { return e.Err.Error() }
func (e *GateError) Unwrap() error { return e.Err }

// ExitError passes on the exit code another program chose (the hidden
// demo-api command); rollsafe's own commands use the types above.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// UsageErrorf reports a bad flag, argument or input: exit 2.
func UsageErrorf(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// Failedf reports a run whose gate failed: exit 1.
func Failedf(format string, a ...any) error {
	return &GateError{Err: fmt.Errorf(format, a...)}
}

// ErrSilent ends a command with exit 1 after it has already said why.
var ErrSilent error = &GateError{Err: errors.New("")}

// ErrBadInput ends a command with exit 2 after it has printed each
// unusable input on its own line.
var ErrBadInput error = &UsageError{Err: errors.New("")}

// Code maps an error returned by a command to the process exit code. It is
// the whole exit-code policy:
//
//	nil                                       0
//	the cluster or the cloud refused us       3  (see Refused; wins over any wrapper)
//	*GateError (Failedf, ErrSilent)           1
//	*UsageError (UsageErrorf, ErrBadInput,
//	  cobra flag and argument errors)         2
//	*ExitError                                its Code
//	anything else                             3
//
// A refusal is 3 in every command, even where it arrives inside a usage
// error: nothing in the invocation was wrong — the same command runs once
// the Role or the credentials are fixed, and soak in a pod has no
// kubeconfig the user could have mistyped. Exit 2 stays what rollsafe can
// tell from the invocation and its files alone.
func Code(err error) int {
	var (
		gate  *GateError
		usage *UsageError
		exit  *ExitError
	)
	switch {
	case err == nil:
		return ExitOK
	case Refused(err):
		return ExitRuntime
	case errors.As(err, &gate):
		return ExitFailed
	case errors.As(err, &usage):
		return ExitUsage
	case errors.As(err, &exit):
		return exit.Code
	}
	return ExitRuntime
}

// awsRefusals are the error codes with which AWS APIs refuse an identity
// (as opposed to a request: a wrong ARN is ValidationError, input).
var awsRefusals = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true,
	"InvalidClientTokenId": true, "ExpiredToken": true, "ExpiredTokenException": true,
}

// Refused says whether err, anywhere in its chain, is a server refusing
// the caller's identity: Kubernetes Forbidden or Unauthorized (RBAC, a bad
// or expired token), or an AWS access-denied error.
func Refused(err error) bool {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && awsRefusals[api.ErrorCode()]
}

// FileFlagError is the usage error for a file named by a flag that cannot
// be opened or created: it names the flag and the path once (an
// *fs.PathError would repeat the path after the operation).
func FileFlagError(flag, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return UsageErrorf("%s %s: %v", flag, path, err)
}
