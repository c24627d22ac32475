// Package clitest runs rollsafe's commands for tests as a user would: in
// memory through the whole command tree (Run), or as a real child process
// that gets real signals (Command). It is not in testutil because it
// imports every command, and testutil is used by the libraries' own tests.
package clitest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"

	"github.com/rollsafe/rollsafe/internal/cmd/root"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

// Run runs `rollsafe args...` on a fresh command tree with stdin as its
// input, and returns the exit code the process would have and what it
// wrote to stdout and stderr.
func Run(ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, Name: "rollsafe"}
	code = root.Run(ctx, f, args)
	return code, out.String(), errOut.String()
}

// childEnv tells a test binary started by Command to be rollsafe.
const childEnv = "ROLLSAFE_CLITEST_CHILD"

// ActAsChild makes the test binary act as rollsafe (root.Main: its
// signals, its exit code) when Command started it. Call it first in
// TestMain; in the test process itself it returns at once.
func ActAsChild() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(root.Main())
	}
}

// Command is `rollsafe args...` as a real process, without building the
// binary: the test binary itself, which ActAsChild turns into rollsafe.
func Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}
