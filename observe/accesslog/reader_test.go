package accesslog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/observe/awstest"
)

// collector is a Visitor that keeps "file:line trace" for every entry.
type collector struct {
	mu  *sync.Mutex
	got *[]string
}

func (c collector) Visit(at Pos, e *Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.got = append(*c.got, at.String()+" "+string(e.TraceID))
}

func scanAll(t *testing.T, opts Options, inputs ...string) ([]string, Stats) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	st, err := Scan(context.Background(), inputs, opts, func() Visitor { return collector{&mu, &got} })
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	sort.Strings(got)
	return got, st
}

// logLine returns a valid line whose trace id names n.
func logLine(n int) string {
	e, err := Parse([]byte(realLines[5]))
	if err != nil {
		panic(err)
	}
	e.TraceID = []byte("Root=1-65e1a6b1-" + fmt.Sprintf("%024d", n))
	return e.String()
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(logLine(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeGz(t testing.TB, path string, raw []byte) {
	t.Helper()
	if err := os.WriteFile(path, gz(t, string(raw)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanDirectoryGzipAndPlain(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.log"), []byte(lines(0, 3)))
	// ALB's own files are gzipped; a name without .gz is sniffed anyway.
	write(t, filepath.Join(dir, "2024/03/01/b.log.gz"), gz(t, lines(3, 6)))
	write(t, filepath.Join(dir, "2024/03/01/c"), gz(t, lines(6, 8)))
	// Concatenated gzip members (cat x.gz y.gz) read as one stream.
	write(t, filepath.Join(dir, "2024/03/02/d.log.gz"), append(gz(t, lines(8, 10)), gz(t, lines(10, 13))...))
	// A last line without a newline still counts.
	write(t, filepath.Join(dir, "e.log"), []byte(strings.TrimSuffix(lines(13, 14), "\n")))

	got, st := scanAll(t, Options{Workers: 3}, dir)
	if !st.Clean() || st.Entries != 14 || st.Lines != 14 || st.Files != 5 {
		t.Fatalf("stats %+v", st)
	}
	want := []string{}
	for _, f := range []struct {
		name     string
		from, to int
	}{{"a.log", 0, 3}, {"2024/03/01/b.log.gz", 3, 6}, {"2024/03/01/c", 6, 8}, {"2024/03/02/d.log.gz", 8, 13}, {"e.log", 13, 14}} {
		for n := f.from; n < f.to; n++ {
			want = append(want, fmt.Sprintf("%s:%d Root=1-65e1a6b1-%024d", filepath.Join(dir, f.name), n-f.from+1, n))
		}
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestScanManyChunks(t *testing.T) {
	// Enough lines to span several 1 MiB chunks: line numbers must stay exact
	// across chunk boundaries.
	n := 3*chunkSize/len(logLine(0)) + 17
	dir := t.TempDir()
	path := filepath.Join(dir, "big.log.gz")
	write(t, path, gz(t, lines(0, n)))
	got, st := scanAll(t, Options{Workers: 2}, path)
	if !st.Clean() || st.Entries != int64(n) {
		t.Fatalf("stats %+v", st)
	}
	for _, g := range got {
		at, trace, _ := strings.Cut(g, " ")
		ln, _ := strconv.Atoi(at[strings.LastIndexByte(at, ':')+1:])
		if want := fmt.Sprintf("Root=1-65e1a6b1-%024d", ln-1); trace != want {
			t.Fatalf("%s has %s, want %s", at, trace, want)
		}
	}
}

func TestScanCorruptInput(t *testing.T) {
	dir := t.TempDir()
	good := lines(0, 4)
	ls := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	// line 2: a missing quote; line 3: a bad status field.
	ls[1] = strings.Replace(ls[1], `"POST https`, `POST https`, 1)
	ls[2] = strings.Replace(ls[2], " 502 - ", " 5o2 - ", 1)
	bad := filepath.Join(dir, "bad.log")
	write(t, bad, []byte(strings.Join(ls, "\n")+"\n"))

	// A half-written gzip: the writer died mid-file.
	full := gz(t, lines(100, 400))
	half := filepath.Join(dir, "half.log.gz")
	write(t, half, full[:len(full)/2])

	// Garbage that is not gzip after a valid member.
	tail := filepath.Join(dir, "tail.log.gz")
	write(t, tail, append(gz(t, lines(500, 502)), []byte("not gzip at all")...))

	got, st := scanAll(t, Options{}, dir)
	if st.BadLines < 3 || st.BadFiles != 2 {
		t.Errorf("bad lines %d bad files %d, want ≥3 and 2; problems %v", st.BadLines, st.BadFiles, st.Problems)
	}
	msgs := make([]string, len(st.Problems))
	for i, p := range st.Problems {
		msgs[i] = p.Error()
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		bad + ":2: field 13 (request)", // missing quote caught at the field it broke
		bad + ":3: field 9 (elb_status_code)",
		half + ":", "incomplete line", "unexpected EOF",
		tail + ":3: reading stopped: gzip: invalid header",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not mention %q:\n%s", want, all)
		}
	}
	// Good lines around the bad ones are all still read.
	var fromBad, fromHalf, fromTail int
	for _, g := range got {
		switch {
		case strings.HasPrefix(g, bad+":"):
			fromBad++
		case strings.HasPrefix(g, half+":"):
			fromHalf++
		case strings.HasPrefix(g, tail+":"):
			fromTail++
		}
	}
	if fromBad != 2 || fromTail != 2 || fromHalf == 0 {
		t.Errorf("good lines read: bad.log %d (want 2), tail %d (want 2), half %d (want >0)", fromBad, fromTail, fromHalf)
	}
	if st.Lines != st.Entries+st.BadLines-1 { // the incomplete line is bad but was never a whole line
		t.Errorf("lines %d entries %d bad %d do not add up", st.Lines, st.Entries, st.BadLines)
	}
}

func TestScanMissingInput(t *testing.T) {
	_, err := Scan(context.Background(), []string{"/nonexistent/alb"}, Options{}, func() Visitor { return Visitors{} })
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "/nonexistent/alb: no such file") {
		t.Errorf("err = %v, want an InputError naming the path", err)
	}
}

func TestScanCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	write(t, path, []byte(lines(0, 10)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Scan(ctx, []string{path}, Options{}, func() Visitor { return Visitors{} })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// s3StandIn is a loopback stand-in for Amazon S3 (which cannot be reached
// from here): it speaks the path-style REST subset the SDK uses to read
// logs, ListObjectsV2 (paginated, maxKeys 2 so continuation is exercised)
// and GetObject. Requests come from the real aws-sdk-go-v2 S3 client.
type s3StandIn struct {
	bucket  string
	objects map[string][]byte
	mu      sync.Mutex
	calls   []string
}

func (s *s3StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	s.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, "unsigned", http.StatusForbidden)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket != s.bucket {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`)
		return
	}
	if key == "" && r.URL.Query().Get("list-type") == "2" {
		s.list(w, r)
		return
	}
	body, ok := s.objects[key]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(body)
}

func (s *s3StandIn) list(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	after := r.URL.Query().Get("continuation-token")
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	type content struct {
		Key  string
		Size int
	}
	res := struct {
		XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name                  string
		Prefix                string
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		NextContinuationToken string `xml:",omitempty"`
		Contents              []content
	}{Name: s.bucket, Prefix: prefix, MaxKeys: 2}
	for i, k := range keys {
		if i == 2 {
			res.IsTruncated, res.NextContinuationToken = true, keys[1]
			break
		}
		res.Contents = append(res.Contents, content{Key: k, Size: len(s.objects[k])})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}

func TestScanS3StandIn(t *testing.T) {
	p := "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/"
	stand := &s3StandIn{bucket: "alb-logs", objects: map[string][]byte{
		p + "a_20240301T0005Z.log.gz": gz(t, lines(0, 2)),
		p + "b_20240301T0005Z.log.gz": gz(t, lines(2, 5)),
		p + "c_20240301T0010Z.log.gz": gz(t, lines(5, 6)),
		p:                             nil, // a "folder" marker
		"other/x.log.gz":              gz(t, lines(90, 91)),
	}}
	srv := httptest.NewServer(stand)
	defer srv.Close()
	awstest.Env(t, "us-east-2")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := NewS3(ctx, S3Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, st := scanAll(t, Options{S3: cl}, "s3://alb-logs/AWSLogs/123456789012/")
	if !st.Clean() || st.Entries != 6 || st.Files != 3 {
		t.Fatalf("stats %+v, calls %v", st, stand.calls)
	}
	if want := "s3://alb-logs/" + p + "b_20240301T0005Z.log.gz:3 Root=1-65e1a6b1-" + fmt.Sprintf("%024d", 4); !slices.Contains(got, want) {
		t.Errorf("missing %q in %v", want, got)
	}
	lists := 0
	for _, c := range stand.calls {
		if strings.Contains(c, "list-type=2") {
			lists++
		}
	}
	if lists != 2 { // 4 keys under the prefix incl. the marker, 2 per page
		t.Errorf("%d list calls, want 2 (pagination): %v", lists, stand.calls)
	}

	_, err = Scan(ctx, []string{"s3://no-such-bucket/x"}, Options{S3: cl}, func() Visitor { return Visitors{} })
	if err == nil || !strings.Contains(err.Error(), "s3://no-such-bucket/x") || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("missing bucket: err = %v", err)
	}
}
