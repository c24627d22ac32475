package report

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// inputsLogLine is one access-log line as the ALB writes it.
func inputsLogLine() string {
	e := accesslog.Entry{
		Type: []byte("http"), Time: time.Date(2024, 3, 1, 0, 0, 1, 0, time.UTC),
		ELB: []byte("app/lab/1"), Client: []byte("127.0.0.1:40000"), Target: []byte("127.0.1.2:1325"),
		TargetProcessingTime: 12 * time.Millisecond, ELBStatusCode: 200, TargetStatusCode: 200,
		ReceivedBytes: 80, SentBytes: 120, Request: []byte("GET http://127.0.0.1:8080/ HTTP/1.1"),
		TraceID:             []byte("Root=1-65e1a6b1-0123456789abcdef01234567"),
		RequestCreationTime: time.Date(2024, 3, 1, 0, 0, 0, 988000000, time.UTC),
		ActionsExecuted:     []byte("forward"),
	}
	return e.String() + "\n"
}

const inputsTimeline = `{"kind":"request","time":"2024-03-01T00:00:00Z","source":"probe","seq":1,"status":200,"class":"ok"}` + "\n"

func inputsWrite(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func inputsGzip(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestClassifyInputsFiles(t *testing.T) {
	dir := t.TempDir()
	ndjson := inputsWrite(t, filepath.Join(dir, "run.ndjson"), []byte("\n  \n"+inputsTimeline))
	plain := inputsWrite(t, filepath.Join(dir, "access.log"), []byte(inputsLogLine()+inputsLogLine()))
	// Gzipped, and named like a timeline: the content decides.
	gzLog := inputsWrite(t, filepath.Join(dir, "probe.ndjson"), inputsGzip(t, "\r\n"+inputsLogLine()))
	// A gzipped timeline named like a log.
	gzTimeline := inputsWrite(t, filepath.Join(dir, "alb.log"), inputsGzip(t, inputsTimeline))

	got, err := ClassifyInputs([]string{ndjson, plain, gzLog, gzTimeline, "s3://bucket/AWSLogs/", plain, dir + "/./run.ndjson"})
	if err != nil {
		t.Fatal(err)
	}
	want := Inputs{
		Timelines:  []string{ndjson, gzTimeline},
		AccessLogs: []string{plain, gzLog, "s3://bucket/AWSLogs/"},
	}
	if !slices.Equal(got.Timelines, want.Timelines) || !slices.Equal(got.AccessLogs, want.AccessLogs) {
		t.Fatalf("got %+v\nwant %+v (each file once, in argument order)", got, want)
	}

	// openInput gunzips what ClassifyInputs accepted as a gzipped timeline.
	rc, err := openInput(gzTimeline)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var recs []timeline.Record
	if err := timeline.Read(rc, gzTimeline, func(r *timeline.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Seq != 1 {
		t.Fatalf("records from the gzipped timeline: %+v", recs)
	}
}

func TestClassifyInputsDir(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	tl := inputsWrite(t, filepath.Join(runs, "b-probe.ndjson"), []byte(inputsTimeline))
	log1 := inputsWrite(t, filepath.Join(runs, "a.log"), []byte(inputsLogLine()))
	log2 := inputsWrite(t, filepath.Join(runs, "alb", "node1.log.gz"), inputsGzip(t, inputsLogLine()))
	inputsWrite(t, filepath.Join(runs, "empty.log"), nil) // nothing to read: skipped in a directory
	// Hidden files and directories are not inputs, whatever they hold.
	inputsWrite(t, filepath.Join(runs, ".notes.swp"), []byte("not a log\n"))
	inputsWrite(t, filepath.Join(runs, ".cache", "junk"), []byte("junk\n"))
	if err := os.Symlink(log1, filepath.Join(runs, "link.log")); err != nil { // not a regular file, as in `rollsafe logs`
		t.Fatal(err)
	}

	got, err := ClassifyInputs([]string{runs, log1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Timelines, []string{tl}) || !slices.Equal(got.AccessLogs, []string{log1, log2}) {
		t.Fatalf("got %+v", got)
	}

	// A symlink to a directory, given as the input, is walked.
	link := filepath.Join(dir, "latest")
	if err := os.Symlink(runs, link); err != nil {
		t.Fatal(err)
	}
	got, err = ClassifyInputs([]string{link})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Timelines, []string{filepath.Join(link, "b-probe.ndjson")}) || len(got.AccessLogs) != 2 {
		t.Fatalf("through a symlinked dir: %+v", got)
	}

	// "." is walked although its name starts with a dot.
	t.Chdir(filepath.Join(runs, "alb"))
	got, err = ClassifyInputs([]string{"."})
	if err != nil || !slices.Equal(got.AccessLogs, []string{"node1.log.gz"}) {
		t.Fatalf("walking \".\": %+v, %v", got, err)
	}

	// A directory with nothing to read.
	bare := filepath.Join(dir, "bare")
	inputsWrite(t, filepath.Join(bare, ".hidden"), []byte(inputsTimeline))
	inputsWrite(t, filepath.Join(bare, "empty"), nil)
	_, err = ClassifyInputs([]string{bare})
	if err == nil || err.Error() != bare+": no timeline or access-log files in this directory" {
		t.Fatalf("dir with nothing usable: %v", err)
	}

	// A file in a directory that is neither fails the whole call, naming it.
	bad := inputsWrite(t, filepath.Join(runs, "sub", "README"), []byte("# notes\n"))
	_, err = ClassifyInputs([]string{runs})
	if err == nil || !strings.HasPrefix(err.Error(), bad+":1: neither an NDJSON timeline nor an ALB access log") {
		t.Fatalf("garbage in a dir: %v", err)
	}
}

func TestClassifyInputsErrors(t *testing.T) {
	dir := t.TempDir()
	empty := inputsWrite(t, filepath.Join(dir, "empty.log"), []byte("\n \n"))
	emptyGz := inputsWrite(t, filepath.Join(dir, "empty.gz"), inputsGzip(t, ""))
	garbage := inputsWrite(t, filepath.Join(dir, "notes.txt"), []byte("\n\nhello world\n"+inputsLogLine()))
	truncated := inputsWrite(t, filepath.Join(dir, "cut.log"), []byte(inputsLogLine()[:200]+"\n"))
	badGz := inputsWrite(t, filepath.Join(dir, "bad.gz"), []byte{0x1f, 0x8b, 0, 0})
	missing := filepath.Join(dir, "missing.ndjson")
	ok := inputsWrite(t, filepath.Join(dir, "ok.log"), []byte(inputsLogLine()))

	for _, tc := range []struct {
		name  string
		paths []string
		want  string // the whole message, or its start when it ends in "*"
	}{
		{"empty file", []string{empty}, empty + ": empty"},
		{"empty gzip", []string{emptyGz}, emptyGz + ": empty"},
		{"garbage", []string{garbage}, garbage + ":3: neither an NDJSON timeline nor an ALB access log (as an access-log line: *"},
		{"truncated line", []string{truncated}, truncated + ":1: neither an NDJSON timeline nor an ALB access log (as an access-log line: *"},
		{"bad gzip", []string{badGz}, badGz + ": gzip header: *"},
		{"missing", []string{missing}, missing + ": no such file or directory"},
		{"missing after a good one", []string{ok, missing}, missing + ": no such file or directory"},
		{"stdin", []string{"-"}, "-: report reads files, not stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ClassifyInputs(tc.paths)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("not one line: %q", msg)
			}
			if prefix, ok := strings.CutSuffix(tc.want, "*"); ok {
				if !strings.HasPrefix(msg, prefix) || len(msg) == len(prefix) {
					t.Errorf("got  %q\nwant %q…", msg, prefix)
				}
			} else if msg != tc.want {
				t.Errorf("got  %q\nwant %q", msg, tc.want)
			}
			if strings.Count(msg, filepath.Base(tc.paths[len(tc.paths)-1])) > 1 || strings.Contains(msg, "stat ") {
				t.Errorf("names the path more than once: %q", msg)
			}
		})
	}
}
