package accesslog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Visitor receives the entries of a Scan. Each parse worker has its own
// Visitor (from the factory passed to Scan), so a Visitor needs no locking;
// the caller merges them when Scan returns. The Entry and its bytes are only
// valid during the call: Clone what you keep.
type Visitor interface {
	Visit(at Pos, e *Entry)
}

// Pos says where a line came from.
type Pos struct {
	File string // local path or s3://bucket/key
	Line int    // 1-based
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Problem is a line or a file that could not be read. Line is 0 for a file
// that could not be opened or listed.
type Problem struct {
	Pos
	Err error
}

func (p Problem) Error() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %v", p.File, p.Err)
	}
	return fmt.Sprintf("%s: %v", p.Pos, p.Err)
}

// Options tune a Scan.
type Options struct {
	// Workers is how many goroutines parse lines; 0 means GOMAXPROCS.
	Workers int
	// MaxProblems caps how many Problems Stats keeps (all are counted); 0 means 100.
	MaxProblems int
	// S3 opens s3:// inputs; nil means NewS3 with default settings.
	S3 *S3
	// Counters, if set, is updated while the scan runs (for a live progress line).
	Counters *Counters
}

// Counters are running totals a progress line can read while Scan works.
type Counters struct {
	Bytes atomic.Int64 // uncompressed bytes read
	Lines atomic.Int64
	Files atomic.Int64
}

// Stats is what a Scan read.
type Stats struct {
	Files    int
	Bytes    int64 // uncompressed
	Lines    int64 // non-empty lines
	Entries  int64 // lines parsed into an Entry
	BadLines int64 // lines that did not parse (Problems has the first ones)
	BadFiles int   // inputs that could not be opened, listed or fully read
	Problems []Problem
	// ProblemCount counts every problem, kept or not.
	ProblemCount int64
}

// Clean reports whether every byte of input was read and every line parsed.
func (s *Stats) Clean() bool { return s.ProblemCount == 0 }

// chunk is a run of whole lines from one file.
type chunk struct {
	file      string
	firstLine int
	buf       *[]byte
	data      []byte
}

const chunkSize = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Scan reads every input — a file, a directory (recursively), "-" for
// stdin, or s3://bucket/prefix — gunzipping what is gzipped (concatenated
// members included), and hands each parsed line to a Visitor from
// newVisitor. Lines and files that cannot be read are counted and reported
// in Stats with file:line; the scan goes on. Scan returns early, with what
// it has, when ctx is cancelled (the error is then ctx.Err()).
func Scan(ctx context.Context, inputs []string, opts Options, newVisitor func() Visitor) (Stats, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 100
	}
	if opts.Counters == nil {
		opts.Counters = new(Counters)
	}
	s := &scan{opts: opts}

	srcs, err := s.expand(ctx, inputs)
	if err != nil {
		return s.stats, err
	}

	chunks := make(chan chunk, 2*workers)
	var parsers sync.WaitGroup
	for range workers {
		v := newVisitor()
		parsers.Add(1)
		go func() {
			defer parsers.Done()
			s.parseChunks(chunks, v)
		}()
	}

	// Files are read concurrently too: decompression is the costly part and
	// ALB writes one file per node every 5 minutes, so there are usually many.
	files := make(chan source)
	var readers sync.WaitGroup
	for range min(workers, max(len(srcs), 1)) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for src := range files {
				s.readSource(ctx, src, chunks)
			}
		}()
	}
feed:
	for _, src := range srcs {
		select {
		case files <- src:
		case <-ctx.Done():
			break feed
		}
	}
	close(files)
	readers.Wait()
	close(chunks)
	parsers.Wait()

	s.stats.Bytes = opts.Counters.Bytes.Load()
	sort.Slice(s.stats.Problems, func(i, j int) bool {
		a, b := s.stats.Problems[i], s.stats.Problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return s.stats, ctx.Err()
}

type scan struct {
	opts  Options
	mu    sync.Mutex // guards stats
	stats Stats
}

// source is one input stream to open.
type source struct {
	name string
	open func(ctx context.Context) (io.ReadCloser, error)
}

func (s *scan) problem(p Problem, badLine bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ProblemCount++
	if badLine {
		s.stats.BadLines++
	} else {
		s.stats.BadFiles++
	}
	if len(s.stats.Problems) < s.opts.MaxProblems {
		s.stats.Problems = append(s.stats.Problems, p)
	}
}

// expand turns inputs into the list of streams to read, in a stable order.
func (s *scan) expand(ctx context.Context, inputs []string) ([]source, error) {
	var out []source
	for _, in := range inputs {
		switch {
		case in == "-":
			out = append(out, source{name: "-", open: func(context.Context) (io.ReadCloser, error) {
				return openStdin()
			}})
		case strings.HasPrefix(in, "s3://"):
			cl := s.opts.S3
			if cl == nil {
				var err error
				if cl, err = NewS3(ctx, S3Config{}); err != nil {
					return nil, err
				}
				s.opts.S3 = cl
			}
			objs, err := cl.list(ctx, in)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		default:
			srcs, err := localSources(in)
			if err != nil {
				return nil, err
			}
			out = append(out, srcs...)
		}
	}
	return out, nil
}

// InputError is an input that does not exist or cannot be listed: the scan
// cannot start, so it is returned as an error rather than a Problem.
type InputError struct {
	Input string
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %v", e.Input, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

func localSources(path string) ([]source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &InputError{Input: path, Err: unwrapPathError(err)}
	}
	if !fi.IsDir() {
		return []source{fileSource(path)}, nil
	}
	var out []source
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, fileSource(p))
		}
		return nil
	})
	if err != nil {
		return nil, &InputError{Input: path, Err: unwrapPathError(err)}
	}
	return out, nil // WalkDir visits in lexical order
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileSource(path string) source {
	return source{name: path, open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}
}

// readSource streams one input into chunks of whole lines.
func (s *scan) readSource(ctx context.Context, src source, out chan<- chunk) {
	rc, err := src.open(ctx)
	if err != nil {
		s.problem(Problem{Pos: Pos{File: src.name}, Err: err}, false)
		return
	}
	defer rc.Close()
	// Cancelling must also end a read that is blocked (stdin, a slow S3
	// body): closing the stream is the one way to interrupt it.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	s.opts.Counters.Files.Add(1)
	s.mu.Lock()
	s.stats.Files++
	s.mu.Unlock()

	r, err := Decompressed(rc)
	if err != nil {
		s.problem(Problem{Pos: Pos{File: src.name}, Err: err}, false)
		return
	}
	line := 1
	bp := chunkPool.Get().(*[]byte)
	n := 0 // bytes held in *bp
	for {
		if ctx.Err() != nil {
			chunkPool.Put(bp)
			return
		}
		if n == len(*bp) { // one line longer than the buffer: grow it
			if len(*bp) >= 64<<20 {
				s.problem(Problem{Pos: Pos{File: src.name, Line: line}, Err: errors.New("line longer than 64 MiB; rest of file skipped")}, false)
				return
			}
			bigger := make([]byte, 2*len(*bp))
			copy(bigger, (*bp)[:n])
			bp = &bigger
		}
		m, rerr := r.Read((*bp)[n:])
		n += m
		s.opts.Counters.Bytes.Add(int64(m))
		if rerr == nil && m > 0 {
			last := bytes.LastIndexByte((*bp)[n-m:n], '\n')
			if last < 0 {
				continue
			}
			cut := n - m + last + 1
			nb := chunkPool.Get().(*[]byte)
			if rest := n - cut; rest > len(*nb)/2 { // keep room to read after a long partial line
				b := make([]byte, 2*max(rest, chunkSize))
				nb = &b
			}
			copy(*nb, (*bp)[cut:n]) // the partial last line starts the next chunk
			lines := bytes.Count((*bp)[:cut], []byte{'\n'})
			select {
			case out <- chunk{file: src.name, firstLine: line, buf: bp, data: (*bp)[:cut]}:
			case <-ctx.Done():
				return
			}
			line += lines
			bp, n = nb, n-cut
			continue
		}
		if rerr == nil {
			continue
		}
		if ctx.Err() != nil {
			return // the read failed because we closed the stream: not a problem of the input
		}
		// End of stream (clean or not): hand over what is left.
		if n > 0 {
			tail := (*bp)[:n]
			if rerr != io.EOF && tail[len(tail)-1] != '\n' {
				// The stream broke inside this line: it is not a line at all.
				lines := bytes.Count(tail, []byte{'\n'})
				cut := bytes.LastIndexByte(tail, '\n') + 1
				s.problem(Problem{Pos: Pos{File: src.name, Line: line + lines},
					Err: fmt.Errorf("incomplete line (input ended: %v)", rerr)}, true)
				tail = tail[:cut]
			}
			if len(tail) > 0 {
				out <- chunk{file: src.name, firstLine: line, buf: bp, data: tail}
				line += bytes.Count(tail, []byte{'\n'})
			}
		}
		if rerr != io.EOF {
			s.problem(Problem{Pos: Pos{File: src.name, Line: line}, Err: fmt.Errorf("reading stopped: %w", rerr)}, false)
		}
		return
	}
}

// Decompressed returns r gunzipped if it starts with the gzip magic bytes
// (whatever the file is named), else r itself, buffered. Concatenated gzip
// members are read as one stream. report reads its inputs with it too, so
// a file counts as gzipped the same way everywhere.
func Decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(2)
	if err != nil && len(magic) < 2 {
		return br, nil // empty or one byte: not gzip; let the line reader see it
	}
	if magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	return zr, nil
}

// parseChunks parses every line of every chunk it receives.
func (s *scan) parseChunks(in <-chan chunk, v Visitor) {
	var e Entry
	var lines, entries int64
	for c := range in {
		data := c.data
		pos := Pos{File: c.file, Line: c.firstLine}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			var ln []byte
			if i < 0 {
				ln, data = data, nil
			} else {
				ln, data = data[:i], data[i+1:]
			}
			if len(bytes.TrimSpace(ln)) > 0 {
				lines++
				if err := e.Parse(ln); err != nil {
					s.problem(Problem{Pos: pos, Err: err}, true)
				} else {
					entries++
					v.Visit(pos, &e)
				}
			}
			pos.Line++
		}
		s.opts.Counters.Lines.Add(int64(pos.Line - c.firstLine))
		if cap(*c.buf) == chunkSize {
			chunkPool.Put(c.buf)
		}
	}
	s.mu.Lock()
	s.stats.Lines += lines
	s.stats.Entries += entries
	s.mu.Unlock()
}
