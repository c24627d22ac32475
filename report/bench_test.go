package report

import (
	"context"
	"os"
	"strings"
	"testing"
)

// BenchmarkBuildFiles builds the report of the files in
// $REPORT_BENCH_FILES (space-separated; bench/report/gen writes a 1M-record
// timeline and its access log): bench/report/run.sh compares the whole
// command with `rollsafe logs` side by side.
func BenchmarkBuildFiles(b *testing.B) {
	files := strings.Fields(os.Getenv("REPORT_BENCH_FILES"))
	if len(files) == 0 {
		b.Skip("set REPORT_BENCH_FILES (bench/report/gen writes probe.ndjson and alb.log)")
	}
	for b.Loop() {
		if _, err := Build(context.Background(), files, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
