package report

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rollsafe/rollsafe/observe/accesslog"
)

// Inputs are report's arguments sorted by what they hold. Paths keep the
// order they were given in (a directory's files in lexical order), each
// file once.
type Inputs struct {
	Timelines  []string // NDJSON timeline files (possibly gzipped)
	AccessLogs []string // ALB access-log files (possibly gzipped) and s3:// prefixes
}

// maxSniff bounds how much of a file's first non-empty line is read to
// recognise it: an access-log line is under 10 KB, and a timeline is told
// by its first byte.
const maxSniff = 1 << 20

// ClassifyInputs recognises each path by its content, not its name: a file
// whose first non-empty line (after gunzipping, if it starts with the gzip
// magic bytes) starts with '{' is an NDJSON timeline; one whose first line
// parses as an ALB access-log line is an access log. A directory is walked
// recursively (a symlink given as the directory is followed, symlinks in it
// are not), skipping hidden files and directories and, as `rollsafe logs`
// does, anything that is not a regular file; its empty files are skipped
// too, but a directory with nothing to read is an error. s3:// is always an
// access log (S3 is not contacted here). The error is one line naming the
// path (and the line, for a file that is neither).
func ClassifyInputs(paths []string) (Inputs, error) {
	var in Inputs
	seen := map[string]bool{}
	add := func(list *[]string, p string) {
		if key := filepath.Clean(p); !seen[key] {
			seen[key] = true
			*list = append(*list, p)
		}
	}
	for _, p := range paths {
		switch {
		case p == "-":
			return Inputs{}, errors.New("-: report reads files, not stdin")
		case strings.HasPrefix(p, "s3://"):
			add(&in.AccessLogs, p)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return Inputs{}, fmt.Errorf("%s: %v", p, withoutPathOp(err))
		}
		if !fi.IsDir() {
			kind, err := classifyFile(p)
			switch {
			case err != nil:
				return Inputs{}, err
			case kind == kindEmpty:
				return Inputs{}, fmt.Errorf("%s: empty", p)
			}
			add(kind.list(&in), p)
			continue
		}
		// WalkDir does not follow a symlink, not even the root's: a
		// trailing slash makes the root's Lstat resolve it.
		root := p
		if lfi, err := os.Lstat(p); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			root = p + string(filepath.Separator)
		}
		found := 0
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("%s: %v", path, withoutPathOp(err))
			}
			if path != root && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			kind, err := classifyFile(path)
			if err != nil {
				return err
			}
			if kind != kindEmpty {
				found++
				add(kind.list(&in), path)
			}
			return nil
		})
		if err != nil {
			return Inputs{}, err
		}
		if found == 0 {
			return Inputs{}, fmt.Errorf("%s: no timeline or access-log files in this directory", p)
		}
	}
	return in, nil
}

type inputKind int

const (
	kindEmpty inputKind = iota
	kindTimeline
	kindAccessLog
)

func (k inputKind) list(in *Inputs) *[]string {
	if k == kindTimeline {
		return &in.Timelines
	}
	return &in.AccessLogs
}

func classifyFile(path string) (inputKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, withoutPathOp(err))
	}
	defer f.Close()
	r, err := accesslog.Decompressed(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	for line := 1; ; line++ {
		b, err := readSniffLine(br)
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			if t[0] == '{' {
				return kindTimeline, nil
			}
			if _, perr := accesslog.Parse(t); perr != nil {
				msg := perr.Error()
				if len(msg) > 120 {
					msg = msg[:117] + "..."
				}
				return 0, fmt.Errorf("%s:%d: neither an NDJSON timeline nor an ALB access log (as an access-log line: %s)", path, line, msg)
			}
			return kindAccessLog, nil
		}
		if err == io.EOF {
			return kindEmpty, nil
		}
	}
}

// readSniffLine returns the next line without its newline, at most maxSniff
// bytes of it (the rest of a longer line is skipped). At the end of the
// input it returns what is left and io.EOF.
func readSniffLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if room := maxSniff - len(line); room > 0 {
			line = append(line, frag[:min(len(frag), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte{'\n'}), err
	}
}

// openInput opens a file for reading, gunzipped if it is gzipped (a
// timeline that ClassifyInputs accepted may be). Closing the result closes
// the file.
func openInput(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := accesslog.Decompressed(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// withoutPathOp drops the "stat PATH:" or "open PATH:" that fs errors carry, so
// the caller names the path once.
func withoutPathOp(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
