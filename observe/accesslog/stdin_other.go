//go:build !unix

package accesslog

import "os"

func openStdin() (*os.File, error) { return os.Stdin, nil }
