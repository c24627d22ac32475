package accesslog

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, and every line it accepts comes back byte
// for byte from Append, so no accepted line is ever silently altered.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seedLine))
	for _, l := range realLines {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			if e.Type != nil || e.Extra != nil {
				// a failed parse must not leave a half-filled entry looking valid
				t.Fatalf("failed parse left fields set: %v", err)
			}
			return
		}
		want := bytes.TrimRight(line, " \t\r\n")
		got := e.Append(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("round trip:\n got %q\nwant %q", got, want)
		}
		c := e.Clone()
		if got := c.Append(nil); !bytes.Equal(got, want) {
			t.Fatalf("clone round trip:\n got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := []byte(realLines[5])
	var e Entry
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	e, err := Parse([]byte(realLines[5]))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(realLines[5]) + 1))
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Append(buf[:0])
	}
}
