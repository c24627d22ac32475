//go:build unix

package accesslog

import (
	"os"
	"syscall"
)

// openStdin returns stdin as a File that Close can interrupt. Go does not
// put fd 0 in its poller, so a Read blocked on a pipe would outlive Ctrl-C;
// a non-blocking duplicate is polled and Close wakes the Read. A terminal is
// left alone: non-blocking mode would leak to the shell that shares it.
func openStdin() (*os.File, error) {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		return os.Stdin, nil
	}
	fd, err := syscall.Dup(int(os.Stdin.Fd()))
	if err != nil {
		return os.Stdin, nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.Stdin, nil
	}
	return os.NewFile(uintptr(fd), "/dev/stdin"), nil
}
