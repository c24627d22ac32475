package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// readStd is Read as it was, bufio.Scanner and encoding/json, line after
// line: the reference Read must agree with, and the baseline of
// BenchmarkRead.
func readStd(r io.Reader, name string, fn Sink) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return &ReadError{File: name, Line: line, Err: err}
		}
		if rec.Kind == "" {
			return &ReadError{File: name, Line: line, Err: fmt.Errorf("record has no \"kind\"")}
		}
		if err := fn(&rec); err != nil {
			return &ReadError{File: name, Line: line, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return &ReadError{File: name, Line: line + 1, Err: err}
	}
	return nil
}

// collect reads all of r with read, keeping every record fn was given.
func collect(read func(io.Reader, string, Sink) error, r io.Reader, failAt int) ([]*Record, error) {
	var recs []*Record
	err := read(r, "t.ndjson", func(rec *Record) error {
		recs = append(recs, rec)
		if len(recs) == failAt {
			return fmt.Errorf("fn gives up at record %d", failAt)
		}
		return nil
	})
	return recs, err
}

// checkRead reads data with Read and with readStd (through wrap, if not
// nil) and fails unless fn saw the same records and the errors are the
// same, line and all.
func checkRead(t *testing.T, data []byte, wrap func(io.Reader) io.Reader, failAt int) ([]*Record, error) {
	t.Helper()
	if wrap == nil {
		wrap = func(r io.Reader) io.Reader { return r }
	}
	want, werr := collect(readStd, wrap(bytes.NewReader(data)), failAt)
	got, err := collect(Read, wrap(bytes.NewReader(data)), failAt)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("Read: %v\n want %v", err, werr)
	}
	if werr != nil {
		var re *ReadError
		if !errors.As(err, &re) {
			t.Fatalf("Read error %T is not a *ReadError", err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("Read gave %d records, want %d", len(got), len(want))
	}
	seen := make(map[*Record]bool, len(got))
	for i := range got {
		if seen[got[i]] {
			t.Fatalf("record %d: a Record given twice", i)
		}
		seen[got[i]] = true
		if diff := sameRecord(got[i], want[i]); diff != "" {
			t.Fatalf("record %d: %s", i, diff)
		}
	}
	return got, err
}

// timelineData is n random records, one a line, with blank, CRLF and
// indented lines and lines only encoding/json takes mixed in.
func timelineData(t testing.TB, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	zones := decodeZones(t)
	var b []byte
	for i := range n {
		r := randomRecord(rng, zones)
		if r.Kind == "" {
			r.Kind = KindRequest
		}
		r.Seq = uint64(i)
		var err error
		switch rng.IntN(50) {
		case 0:
			b = append(b, '\n')
		case 1:
			b = append(b, " \t\r\n"...)
		case 2:
			b = append(b, "  "...)
		case 3:
			b = fmt.Appendf(b, `{"kind" : "event", "seq": %d, "time": null, "extra": [1, 2]}`, i)
			b = append(b, "\r\n"...)
			continue
		}
		if b, err = r.AppendJSON(b); err != nil {
			t.Fatal(err)
		}
		b = append(b, '\n')
	}
	return b
}

// Read gives fn what the line-by-line encoding/json reader gave, in order,
// each record its own, on big inputs (many blocks on all workers) and
// small, however the reader hands out its bytes.
func TestReadMatchesStd(t *testing.T) {
	big := timelineData(t, 20000, 1) // about 8 blocks
	if len(big) < 4*blockSize {
		t.Fatalf("only %d bytes", len(big))
	}
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("procs", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			recs, err := checkRead(t, big, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if r.Seq != uint64(i) {
					t.Fatalf("record %d has seq %d: out of order", i, r.Seq)
				}
			}
		})
	}
	small, medium := timelineData(t, 300, 2), timelineData(t, 3000, 3)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"onebyte": iotest.OneByteReader, "half": iotest.HalfReader, "dataerr": iotest.DataErrReader,
		"lastline": func(r io.Reader) io.Reader { return io.MultiReader(r, strings.NewReader(`{"kind":"x"}`)) },
	} {
		t.Run(name, func(t *testing.T) {
			checkRead(t, small, wrap, 0)
			checkRead(t, medium, wrap, 0)
		})
	}
	for _, s := range []string{"", "\n", "\n\n  \n", "\r\n", `{"kind":"a"}`, `{"kind":"a"}` + "\r", " {\"kind\":\"a\"} \n\n",
		"\u00a0{\"kind\":\"a\"}\u0085\n" /* Unicode spaces trimmed too */} {
		checkRead(t, []byte(s), nil, 0)
	}
}

// The first bad line in file order is the one reported, by its exact
// number, wherever it falls among the blocks and workers; fn has seen
// exactly the records before it.
func TestReadBadLine(t *testing.T) {
	data := timelineData(t, 12000, 3)
	lines := bytes.SplitAfter(data, []byte("\n"))
	rng := rand.New(rand.NewPCG(8, 9))
	bad := [][]byte{[]byte(`{"kind":"request","time":"2024-03-01T09:00:00Z"` + "\n"), // truncated
		[]byte(`{"time":"2024-03-01T09:00:00Z","source":"probe"}` + "\n"), // no kind
		[]byte(`{"kind":"request","seq":-1}` + "\n"),
		[]byte(`not json` + "\n")}
	at := []int{0, 1, len(lines) / 2, len(lines) - 2}
	for range 4 {
		at = append(at, rng.IntN(len(lines)))
	}
	// On both sides of the first block boundaries too.
	lr := &lineReader{r: bytes.NewReader(data), size: firstBlock}
	for i, blocks := 0, 0; blocks < 6; blocks++ {
		i += bytes.Count(lr.next(), []byte("\n")) // lines[i] starts the next block
		at = append(at, i-1, i)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for k, i := range at {
		if i < 0 || i >= len(lines) {
			continue
		}
		in := bytes.Join([][]byte{bytes.Join(lines[:i], nil), bad[k%len(bad)], bytes.Join(lines[i+1:], nil)}, nil)
		// A second bad line later must not be the one reported.
		in = append(in, "{\n"...)
		_, err := checkRead(t, in, nil, 0)
		var re *ReadError
		if !errors.As(err, &re) || re.Line != i+1 || re.File != "t.ndjson" {
			t.Fatalf("bad line %d: got %v", i+1, err)
		}
		if k%len(bad) == 1 && re.Err.Error() != `record has no "kind"` {
			t.Fatalf("no kind: %v", re.Err)
		}
	}
}

func TestReadTruncatedLastLine(t *testing.T) {
	data := timelineData(t, 5000, 4)
	n := bytes.Count(data, []byte("\n"))
	data = append(data, `{"kind":"request","time":"2024-03-01T09:00:00.0`...)
	recs, err := checkRead(t, data, nil, 0)
	var re *ReadError
	if !errors.As(err, &re) || re.Line != n+1 {
		t.Fatalf("got %v, want line %d", err, n+1)
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *json.SyntaxError", err)
	}
	if len(recs) == 0 {
		t.Fatal("no records before the truncated line")
	}
}

// An error from fn stops the read with that record's line, in a big input
// as in a small one, and Read does not read on after it returns.
func TestReadFnError(t *testing.T) {
	data := timelineData(t, 20000, 5)
	for _, failAt := range []int{1, 2, 777, 15000, 19999} {
		recs, err := checkRead(t, data, nil, failAt)
		var re *ReadError
		if !errors.As(err, &re) || !strings.Contains(re.Err.Error(), "fn gives up") || len(recs) != failAt {
			t.Fatalf("failAt %d: %v after %d records", failAt, err, len(recs))
		}
	}
	sentinel := errors.New("stop")
	r := &countingReader{r: bytes.NewReader(bytes.Repeat(data, 5))}
	err := Read(r, "t", func(*Record) error { return sentinel })
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v", err)
	}
	after := r.n.Load()
	time.Sleep(10 * time.Millisecond)
	if r.n.Load() != after || after > 16*blockSize {
		t.Fatalf("read %d bytes, then %d more after Read returned", after, r.n.Load()-after)
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Read reads only a few blocks ahead of fn, and a panic in fn leaves no
// goroutine behind.
func TestReadBoundedAhead(t *testing.T) {
	data := bytes.Repeat(probeData(20000), 20) // about 100 blocks
	r := &countingReader{r: bytes.NewReader(data)}
	calls := 0
	err := Read(r, "t", func(*Record) error {
		if calls++; calls == 1 {
			time.Sleep(100 * time.Millisecond) // all the time in the world to read on
			if ahead := r.n.Load(); ahead > int64(maxWorkers+4)*blockSize {
				return fmt.Errorf("%d bytes read while fn was at its first record", ahead)
			}
		}
		return nil
	})
	if err != nil || calls != 400000 {
		t.Fatalf("%d records, %v", calls, err)
	}
	before := runtime.NumGoroutine()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		Read(bytes.NewReader(data), "t", func(*Record) error { panic("fn") })
	}()
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
}

// An I/O error is reported at the line after the last one read; the data
// read before it is still taken (a partial last line is a bad line).
func TestReadIOError(t *testing.T) {
	data := timelineData(t, 20000, 6)
	for _, cut := range []int{0, 100, firstBlock + 17, 3*blockSize + 5, len(data)} {
		fire := func(r io.Reader) io.Reader { return io.MultiReader(r, iotest.ErrReader(errors.New("disk on fire"))) }
		_, err := checkRead(t, data[:cut], fire, 0)
		want := bytes.Count(data[:cut], []byte("\n")) + 1
		var re *ReadError
		if !errors.As(err, &re) || re.Line != want {
			t.Fatalf("cut %d: error %v, want at line %d", cut, err, want)
		}
		if cut == 0 || data[cut-1] == '\n' {
			if re.Err.Error() != "disk on fire" {
				t.Fatalf("cut %d: error %v", cut, err)
			}
		}
	}
}

// Lines up to 16 MB are taken, longer ones are an error with their line.
func TestReadLongLines(t *testing.T) {
	long := func(n int) []byte { // a record n bytes long, and its '\n'
		const pre, post = `{"kind":"event","reason":"`, `"}`
		return []byte(pre + strings.Repeat("x", n-len(pre)-len(post)) + post + "\n")
	}
	head := timelineData(t, 3000, 7)
	nhead := bytes.Count(head, []byte("\n"))
	var in []byte
	in = append(in, head...)
	in = append(in, long(3*blockSize)...)
	in = append(in, head...)
	in = append(in, long(maxLine-1)...) // 16 MB with its '\n'
	in = append(in, head...)
	recs, err := checkRead(t, in, nil, 0)
	if err != nil || len(recs) < 2*nhead {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	in = append(in, long(maxLine)...)
	in = append(in, head...)
	_, err = checkRead(t, in, nil, 0)
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, bufio.ErrTooLong) || re.Line != 3*nhead+3 {
		t.Fatalf("got %v, want %v at line %d", err, bufio.ErrTooLong, 3*nhead+3)
	}
}

// Typical records, as the prober and the observers write them, all take
// the fast path.
func TestReadFastPathOnProbeRecords(t *testing.T) {
	data := probeData(20000)
	before := fallbacks.Load()
	n := 0
	if err := Read(bytes.NewReader(data), "probe", func(*Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if fb := fallbacks.Load() - before; fb != 0 || n != 20000 {
		t.Fatalf("%d of %d records went to encoding/json", fb, n)
	}
}

// probeData is n records like `rollsafe probe --record` writes, with now
// and then a pod or target record as the observers write them.
func probeData(n int) []byte {
	rng := rand.New(rand.NewPCG(10, 11))
	pods := []string{"jiameng-api-6a5bb5b8b6-2x8qr", "jiameng-api-6a5bb5b8b6-gd4xx", "jiameng-api-6a5bb5b8b6-rwjnp"}
	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	var b []byte
	for i := range n {
		sched := start.Add(time.Duration(i) * 500 * time.Microsecond)
		var r *Record
		if i%1000 == 999 {
			r = &Record{Kind: KindPod, Time: sched, Source: "kube", Object: pods[rng.IntN(3)], State: "Terminating", Reason: "deleted",
				Attrs: map[string]string{"ip": "10.0.2.11", "namespace": "demo", "phase": "Running", "container/app": "running+ready"}}
		} else {
			r = &Record{Kind: KindRequest, Time: sched.Add(time.Duration(rng.IntN(100000))), Source: "probe", Seq: uint64(i + 1),
				Scheduled: sched, Latency: time.Duration(500000 + rng.IntN(5000000)), Status: 200, Class: ClassOK, Bytes: 27,
				Replica: pods[rng.IntN(3)], Version: "v1", TraceID: fmt.Sprintf("Root=1-65e19910-25f5f3%018x", i+1)}
			if rng.IntN(200) == 0 {
				r.Status, r.Class, r.Bytes, r.Replica, r.Version = 502, ClassHTTP502, 122, "", ""
			}
		}
		b, _ = r.AppendJSON(b)
		b = append(b, '\n')
	}
	return b
}

// BenchmarkRead reads 100k probe records from memory, the old way
// (bufio.Scanner and encoding/json) and with Read.
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	data := probeData(n)
	for _, c := range []struct {
		name string
		read func(io.Reader, string, Sink) error
	}{{"json", readStd}, {"fast", Read}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.read(bytes.NewReader(data), "b", func(*Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkReadFile reads the timeline $TIMELINE_BENCH_FILE names (such as
// bench/report/gen's probe.ndjson), and says how many lines went to
// encoding/json.
func BenchmarkReadFile(b *testing.B) {
	path := os.Getenv("TIMELINE_BENCH_FILE")
	if path == "" {
		b.Skip("TIMELINE_BENCH_FILE not set")
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		read func(io.Reader, string, Sink) error
	}{{"json", readStd}, {"fast", Read}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(fi.Size())
			before := fallbacks.Load()
			n := 0
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				err = c.read(f, path, func(*Record) error { n++; return nil })
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(fallbacks.Load()-before)/float64(n), "fallback/record")
		})
	}
}

// Read and the line-by-line encoding/json reader agree on any input.
func FuzzRead(f *testing.F) {
	f.Add([]byte("{\"kind\":\"a\"}\n\n \r\n{\"kind\":\"b\",\"seq\":1}"))
	f.Add([]byte("{\"kind\":\"a\"}\n{\"time\":\"2024-03-01T09:00:00Z\"}\n{"))
	f.Add(probeData(20))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, data, nil, 0)
		checkRead(t, data, iotest.HalfReader, 2)
	})
}
