package timeline

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer streams Records as NDJSON; its Write is a Sink. It is safe for
// concurrent use; records are buffered and reach the underlying writer on
// Flush or Close.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	buf []byte // scratch for Record.AppendJSON
	c   io.Closer
	err error
}

// NewWriter returns a Writer on w. If w is an io.Closer, Close closes it.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := &Writer{bw: bw}
	if c, ok := w.(io.Closer); ok {
		tw.c = c
	}
	return tw
}

// Create opens path for writing ("-" is stdout, which Close leaves open).
func Create(path string) (*Writer, error) {
	if path == "-" {
		return NewWriter(nopCloser{os.Stdout}), nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return NewWriter(f), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Write appends one record. The first error sticks and is returned by every
// later call, so a full disk is not silently ignored.
func (w *Writer) Write(r *Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	b, err := r.AppendJSON(w.buf[:0])
	if err != nil {
		return err // this record cannot be written; the stream is still whole
	}
	w.buf = append(b, '\n')
	_, w.err = w.bw.Write(w.buf)
	return w.err
}

// Flush pushes buffered records to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Close flushes and closes the underlying writer.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.c != nil {
		if cerr := w.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// ReadError says which line of which file could not be read.
type ReadError struct {
	File string
	Line int
	Err  error
}

func (e *ReadError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// ReadFile reads every record of the NDJSON file at path.
func ReadFile(path string, fn Sink) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return Read(f, path, fn)
}
