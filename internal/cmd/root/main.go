package root

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

// Main runs the CLI with the process's arguments and streams and returns the
// exit code. The context is cancelled on the first SIGINT/SIGTERM so
// long-running commands stop cleanly and flush what they recorded; a second
// signal kills the process at once (signal.NotifyContext restores the
// default disposition after the first).
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // second signal: default action, immediate exit
	}()
	f := &cmdutil.Factory{IO: cmdutil.System(), Name: cmdutil.InvokedName(os.Args[0])}
	return Run(ctx, f, os.Args[1:])
}

// Run executes args against a fresh command tree; tests call it directly.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := New(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err != nil && err.Error() != "" {
		fmt.Fprintf(f.IO.ErrOut, "%s: %v\n", f.Name, err)
	}
	return cmdutil.Code(err)
}
