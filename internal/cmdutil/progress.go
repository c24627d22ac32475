package cmdutil

import (
	"fmt"
	"io"
	"sync"
)

// clearLine returns the cursor to the line's start and erases the line.
const clearLine = "\r\033[K"

// Progress is the one live status line a command redraws on ErrOut while
// it works. It draws only when ErrOut is a terminal, so piped output and CI
// logs never hold it, and Clear erases it, so what is printed next starts
// on a clean line. Safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: not a terminal, draw nothing
	drawn bool
}

// NewProgress is the progress line for s's ErrOut.
func NewProgress(s *IOStreams) *Progress {
	if !s.ErrTTY {
		return &Progress{}
	}
	return &Progress{w: s.ErrOut}
}

// On says whether the line is drawn at all, so a caller can skip the work
// of making one.
func (p *Progress) On() bool { return p.w != nil }

// Printf replaces the line with the formatted text.
func (p *Progress) Printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, clearLine+format, a...)
	p.drawn = true
}

// Clear erases the line, if one is drawn.
func (p *Progress) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// Above erases the line and runs print while holding it, so what print
// writes (a result on Out, the same terminal) is never cut by a redraw; the
// next Printf draws the line again below it.
func (p *Progress) Above(print func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	print()
}

func (p *Progress) clear() {
	if p.drawn {
		io.WriteString(p.w, clearLine)
		p.drawn = false
	}
}
