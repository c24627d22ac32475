// Package labtest holds what tests that run the lab's stand-ins share.
package labtest

import (
	"io"
	"net"
	"testing"
)

// Start builds one stand-in (a load balancer, a node) from cfg with its
// package's New, failing the test if New does, and closes it when the test
// ends, reporting an error from Close: a stand-in that cannot shut down
// cleanly is a failure too.
func Start[C any, T io.Closer](t testing.TB, newFn func(C) (T, error), cfg C) T {
	t.Helper()
	v, err := newFn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return v
}

// Dial opens a TCP connection to addr, failing the test if it cannot, and
// closes it when the test ends.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
