package cmdutil_test

import (
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

func TestProgress(t *testing.T) {
	var errOut, out strings.Builder
	p := cmdutil.NewProgress(&cmdutil.IOStreams{ErrOut: &errOut, ErrTTY: true})
	p.Clear() // nothing drawn: nothing to erase
	p.Printf("%d requests", 5)
	p.Above(func() { out.WriteString("rollout 1\n") })
	p.Printf("%d requests", 9)
	p.Clear()
	p.Clear()
	if got, want := errOut.String(), "\r\033[K5 requests\r\033[K\r\033[K9 requests\r\033[K"; got != want {
		t.Fatalf("terminal: %q, want %q", got, want)
	}
	if out.String() != "rollout 1\n" {
		t.Fatalf("Above did not print: %q", out.String())
	}

	errOut.Reset()
	off := cmdutil.NewProgress(&cmdutil.IOStreams{ErrOut: &errOut})
	off.Printf("x")
	off.Clear()
	if off.On() || errOut.Len() != 0 {
		t.Fatalf("not a terminal: drew %q", errOut.String())
	}
}
