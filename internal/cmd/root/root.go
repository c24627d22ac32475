// Package root assembles the rollsafe command tree. Each command lives in its
// own package under internal/cmd and only maps flags to a library call.
package root

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	checkcmd "github.com/rollsafe/rollsafe/internal/cmd/check"
	labcmd "github.com/rollsafe/rollsafe/internal/cmd/lab"
	logscmd "github.com/rollsafe/rollsafe/internal/cmd/logs"
	probecmd "github.com/rollsafe/rollsafe/internal/cmd/probe"
	reportcmd "github.com/rollsafe/rollsafe/internal/cmd/report"
	soakcmd "github.com/rollsafe/rollsafe/internal/cmd/soak"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/demoapi"
)

// Version is stamped at build time with -ldflags "-X .../root.Version=v1.2.3";
// otherwise it falls back to the module version go install recorded.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// New builds the root command.
func New(f *cmdutil.Factory) *cobra.Command {
	if f.Version == "" {
		f.Version = version()
	}
	cmd := &cobra.Command{
		Use:   f.Name,
		Short: "Make rolling deployments behind a load balancer provably zero-downtime",
		Long: `rollsafe finds why rolling deployments behind an AWS Application Load Balancer
drop requests (502/503/504) even with readiness gates on, fixes the settings, and
proves the fix: on a laptop with the local lab, in CI, and on the cluster.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       f.Version,
		// With Args and RunE set, cobra hands an unknown command to Args
		// (a typed usage error) instead of failing in Find with an untyped one.
		Args:                       unknownCommand,
		SuggestionsMinimumDistance: 2,
		RunE:                       func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.CompletionOptions.HiddenDefaultCmd = true
	for _, sub := range commands(f) {
		cmd.AddCommand(sub)
	}
	// cobra would add these at Execute, after the walk below.
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd()
	cmdutil.TypeUsageErrors(cmd)
	return cmd
}

// unknownCommand rejects a first word that names no command, with cobra's
// own message and suggestions.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
	}
	return errors.New(msg)
}

// commands is the one list of rollsafe's commands.
func commands(f *cmdutil.Factory) []*cobra.Command {
	return []*cobra.Command{
		newVersionCmd(f),
		labcmd.NewCmd(f),
		probecmd.NewCmd(f),
		reportcmd.NewCmd(f),
		checkcmd.NewCmd(f),
		soakcmd.NewCmd(f),
		logscmd.NewCmd(f),
		newDemoAPICmd(f),
	}
}

// newDemoAPICmd is the demo API inside the rollsafe binary, so the lab can
// run its pods from this one executable (hidden: cmd/demo-api is the
// documented way to run it on its own).
func newDemoAPICmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:                "demo-api [flags]",
		Short:              "Run the demo API (jiameng-api) the lab rolls out",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := demoapi.Main(args, f.IO.Out, f.IO.ErrOut); code != 0 {
				return &cmdutil.ExitError{Code: code, Err: errors.New("")}
			}
			return nil
		},
	}
}

func newVersionCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print rollsafe's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(f.IO.Out, "rollsafe %s\n", f.Version)
			return err
		},
	}
}
