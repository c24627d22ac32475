package cmdutil_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

// cobraError runs a one-command tree with args and returns what Execute
// returned, after TypeUsageErrors.
func cobraError(t *testing.T, args ...string) error {
	t.Helper()
	cmd := &cobra.Command{Use: "x", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil },
		SilenceErrors: true, SilenceUsage: true}
	cmd.Flags().Int("n", 0, "")
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmdutil.TypeUsageErrors(cmd)
	err := cmd.Execute()
	if err == nil {
		t.Fatalf("x %v: no error", args)
	}
	return err
}

func TestCode(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	forbidden := apierrors.NewForbidden(pods, "", errors.New("no RBAC"))
	einval := &os.SyscallError{Syscall: "setsockopt", Err: syscall.EINVAL}
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, cmdutil.ExitOK},
		{"gate", cmdutil.Failedf("3 failures, budget 0"), cmdutil.ExitFailed},
		{"silent gate", cmdutil.ErrSilent, cmdutil.ExitFailed},
		{"usage", cmdutil.UsageErrorf("--rate -1: must be ≥ 0"), cmdutil.ExitUsage},
		{"bad input, said already", cmdutil.ErrBadInput, cmdutil.ExitUsage},
		{"wrapped usage", fmt.Errorf("scenario a: %w", cmdutil.UsageErrorf("--app")), cmdutil.ExitUsage},
		{"wrapped gate", fmt.Errorf("soak: %w", cmdutil.ErrSilent), cmdutil.ExitFailed},
		{"passed-on code", &cmdutil.ExitError{Code: 7, Err: errors.New("")}, 7},
		{"cobra flag error", cobraError(t, "--n", "x", "a"), cmdutil.ExitUsage},
		{"cobra unknown flag", cobraError(t, "--bogus", "a"), cmdutil.ExitUsage},
		{"cobra argument count", cobraError(t, "a", "b"), cmdutil.ExitUsage},
		// A runtime error whose text reads like cobra's ("invalid argument")
		// is still a runtime error.
		{"runtime EINVAL", fmt.Errorf("listen: %w", einval), cmdutil.ExitRuntime},
		{"plain runtime", errors.New("connection refused"), cmdutil.ExitRuntime},
		{"k8s forbidden", fmt.Errorf("--kube: %w", forbidden), cmdutil.ExitRuntime},
		{"k8s unauthorized", apierrors.NewUnauthorized("token expired"), cmdutil.ExitRuntime},
		{"forbidden inside a usage error", &cmdutil.UsageError{Err: forbidden}, cmdutil.ExitRuntime},
		{"aws access denied", &cmdutil.UsageError{Err: &smithy.GenericAPIError{Code: "AccessDenied"}}, cmdutil.ExitRuntime},
		{"aws bad ARN", &cmdutil.UsageError{Err: &smithy.GenericAPIError{Code: "ValidationError"}}, cmdutil.ExitUsage},
		{"k8s not found", apierrors.NewNotFound(pods, "web"), cmdutil.ExitRuntime},
	} {
		if got := cmdutil.Code(c.err); got != c.want {
			t.Errorf("%s: Code(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}

func TestRuntimeEINVALReadsLikeCobra(t *testing.T) {
	// The message the old string matching took for a usage error.
	err := &os.SyscallError{Syscall: "setsockopt", Err: syscall.EINVAL}
	if msg := err.Error(); msg != "setsockopt: invalid argument" {
		t.Fatalf("EINVAL reads %q", msg)
	}
}
