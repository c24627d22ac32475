package timeline

import (
	"errors"
	"testing"
)

// A latch passes records until its sink fails, then refuses every record
// with that first error, whatever fails later.
func TestLatchKeepsTheFirstError(t *testing.T) {
	boom, later := errors.New("disk full"), errors.New("later")
	calls := 0
	l := NewLatch(func(*Record) error {
		if calls++; calls == 2 {
			return boom
		}
		return nil
	})
	r := &Record{Kind: KindEvent}
	if err := l.Write(r); err != nil {
		t.Fatalf("first write: %v", err)
	}
	l.Write(r)
	l.Fail(later)
	if err := l.Write(r); !errors.Is(err, boom) || !errors.Is(l.Err(), boom) || calls != 2 {
		t.Errorf("after the sink failed: Write %v, Err %v, %d calls; want disk full and 2 calls", err, l.Err(), calls)
	}
	if err := NewLatch(nil).Write(r); err != nil {
		t.Errorf("a nil sink: %v", err)
	}
}
