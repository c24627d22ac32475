package timeline

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
)

// Read passes every record in r, in order, to fn. name is used in errors.
// A line that is not a valid record stops the read with a *ReadError naming
// file and line: a timeline with a hole in it would give wrong numbers.
// Blank lines are skipped; a record without "kind" is not valid; an error
// from fn stops the read too, wrapped in a *ReadError with its line. Lines
// may be up to 16 MB long.
//
// Each line decodes exactly as json.Unmarshal into a zero Record would
// (see Record.DecodeJSON). Big inputs are cut into blocks of whole lines
// that GOMAXPROCS goroutines decode at once, a few blocks ahead of fn; fn
// is still called on the caller's goroutine, one record at a time, in file
// order, and the first bad line in file order is the one reported. Every
// call gets a Record of its own, which fn may keep. When Read returns, it
// no longer reads r.
func Read(r io.Reader, name string, fn Sink) error {
	lr := &lineReader{r: r, size: firstBlock}
	first := lr.next()
	if lr.done { // all of it in one block: no goroutines
		line := 0
		if first != nil {
			c := &chunk{data: first}
			d := getDecoder()
			d.parse(c)
			putDecoder(d)
			putBuf(first)
			if err := c.deliver(name, 0, fn); err != nil {
				return err
			}
			line = c.nlines
		}
		if lr.err != nil {
			return &ReadError{File: name, Line: line + 1, Err: lr.err}
		}
		return nil
	}

	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	order := make(chan *chunk, workers+2) // bounds the blocks in flight
	work := make(chan *chunk, workers)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(order)
		for data := first; data != nil; data = lr.next() {
			c := &chunk{data: data, done: make(chan struct{})}
			select {
			case order <- c:
			case <-quit:
				putBuf(data)
				return
			}
			select {
			case work <- c:
			case <-quit:
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer wg.Done()
			d := getDecoder()
			defer putDecoder(d)
			for c := range work {
				select {
				case <-quit:
				default:
					d.parse(c)
				}
				putBuf(c.data)
				c.data = nil
				close(c.done)
			}
		}()
	}
	defer func() { // also if fn panics
		close(quit)
		wg.Wait()
	}()

	line := 0
	for c := range order {
		<-c.done
		if err := c.deliver(name, line, fn); err != nil {
			return err
		}
		line += c.nlines
	}
	if lr.err != nil { // read after order closed: the reader is done with it
		return &ReadError{File: name, Line: line + 1, Err: lr.err}
	}
	return nil
}

// Block sizes: the first block is small so a short timeline costs little;
// blocks then double up to blockSize. A line longer than a block gets a
// block of its own, up to maxLine.
const (
	firstBlock = 64 << 10
	blockSize  = 1 << 20
	maxLine    = 16 << 20
	slabSize   = 64 // request records allocated together
	maxWorkers = 8  // fn is the bottleneck long before
)

var errNoKind = errors.New(`record has no "kind"`)

// chunk is one block of whole lines and, once parsed (done closed), its
// records.
type chunk struct {
	data    []byte
	done    chan struct{}
	recs    []*Record
	lines   []int32 // line of each record, 1 being the block's first
	nlines  int     // lines in the block (when it has no error)
	errLine int     // first bad line of the block, 0 for none
	err     error
}

// deliver calls fn for c's records; base is the number of lines before c.
func (c *chunk) deliver(name string, base int, fn Sink) error {
	for k, rec := range c.recs {
		if err := fn(rec); err != nil {
			return &ReadError{File: name, Line: base + int(c.lines[k]), Err: err}
		}
		c.recs[k] = nil
	}
	if c.err != nil {
		return &ReadError{File: name, Line: base + c.errLine, Err: c.err}
	}
	return nil
}

// parse decodes c's lines up to the first bad one.
func (d *decoder) parse(c *chunk) {
	data := c.data
	c.recs = make([]*Record, 0, len(data)/256+1)
	c.lines = make([]int32, 0, cap(c.recs))
	line := 0
	for len(data) > 0 {
		l := data
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			l, data = data[:k], data[k+1:]
		} else {
			data = nil
		}
		line++
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		rec := d.slot()
		if err := d.decodeZero(l, rec); err != nil {
			*rec = Record{} // the slot is taken by the next line
			c.errLine, c.err = line, err
			return
		}
		if rec.Kind == "" {
			*rec = Record{}
			c.errLine, c.err = line, errNoKind
			return
		}
		c.recs = append(c.recs, d.keep(rec))
		c.lines = append(c.lines, int32(line))
	}
	c.nlines = line
}

// slot is where the next record is decoded: a zero Record in the slab
// request records are kept in, a slab at a time (they are the bulk of a
// timeline and callers rarely keep them).
func (d *decoder) slot() *Record {
	if len(d.slab) == cap(d.slab) {
		d.slab = make([]Record, 0, slabSize)
	}
	return &d.slab[:len(d.slab)+1][len(d.slab)]
}

// keep takes the record decoded in slot: a request stays in the slab; any
// other record moves to one of its own, so that one a caller keeps holds
// on to nothing else, and the slot is cleared for the next line.
func (d *decoder) keep(r *Record) *Record {
	if r.Kind == KindRequest {
		d.slab = d.slab[:len(d.slab)+1]
		return r
	}
	p := new(Record)
	*p = *r
	*r = Record{}
	return p
}

// lineReader cuts r into blocks of whole lines, as bufio.Scanner with
// ScanLines and a 16 MB limit would: a last line without '\n' counts, data
// read before an error is still delivered, and then the error stays in err.
type lineReader struct {
	r       io.Reader
	size    int    // of the next block
	pending []byte // start of the next line, read with the last block
	done    bool   // nothing more to read
	err     error  // what ended the input, if not EOF
}

// next returns the next block, nil at the end.
func (lr *lineReader) next() []byte {
	for !lr.done {
		size := min(max(lr.size, len(lr.pending)*2), maxLine)
		buf := getBuf(size)
		n := copy(buf, lr.pending)
		lr.pending = lr.pending[:0]
		for empties := 0; n < len(buf); {
			m, err := lr.r.Read(buf[n:])
			n += m
			if err != nil {
				lr.done = true
				if err != io.EOF {
					lr.err = err
				}
				break
			}
			if m > 0 {
				empties = 0
			} else if empties++; empties >= 100 {
				lr.done, lr.err = true, io.ErrNoProgress
				break
			}
		}
		data := buf[:n]
		if lr.done {
			if n == 0 {
				putBuf(buf)
				return nil
			}
			return data
		}
		k := bytes.LastIndexByte(data, '\n')
		if k < 0 { // a line longer than the block
			if n >= maxLine {
				lr.done, lr.err = true, bufio.ErrTooLong
				putBuf(buf)
				return nil
			}
			lr.pending = append(lr.pending, data...)
			lr.size = min(2*n, maxLine)
			putBuf(buf)
			continue
		}
		// The start of the next line is copied out now: data belongs to
		// the worker from here on, and its buffer goes back to the pool.
		lr.pending = append(lr.pending, data[k+1:]...)
		lr.size = min(2*min(lr.size, blockSize), blockSize)
		return data[:k+1]
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, blockSize); return &b }}

func getBuf(size int) []byte {
	if size == blockSize {
		return *bufPool.Get().(*[]byte)
	}
	return make([]byte, size)
}

func putBuf(b []byte) {
	if cap(b) == blockSize {
		b = b[:blockSize]
		bufPool.Put(&b)
	}
}
