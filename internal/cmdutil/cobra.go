package cmdutil

import (
	"github.com/spf13/cobra"
)

// TypeUsageErrors makes every usage error cobra raises for cmd and its
// subcommands a *UsageError, by type rather than by message: a bad flag
// through the flag-error hook, a wrong argument count through each
// command's Args validator. Call it once the tree is complete.
func TypeUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return UsageErrorf("%w (see '%s --help')", err, c.CommandPath())
	})
	typeArgs(cmd)
}

func typeArgs(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil && c.HasParent() {
				// cobra's "accepts 1 arg(s), received 0" does not say what
				// the argument is; the usage line does.
				return UsageErrorf("%w (usage: %s)", err, c.UseLine())
			} else if err != nil {
				return &UsageError{Err: err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		typeArgs(sub)
	}
}
