package root

import "strings"

// isCobraUsage spots the argument errors cobra raises itself (unknown command,
// wrong argument count), which carry no type of their own.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "received ", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
