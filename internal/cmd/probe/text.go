package probe

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/probe/fleet"
	"github.com/rollsafe/rollsafe/timeline"
)

func progressLine(s *probe.Summary, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Requests) / elapsed.Seconds()
	}
	p := s.Percentiles()
	line := fmt.Sprintf("%6.1fs  %7.1f req/s  ok %d", elapsed.Seconds(), rate, s.OK)
	if fl := cmdutil.Counts(s.Failures, timeline.FailureClasses); fl != "" {
		line += "  " + fl
	}
	if s.Late > 0 {
		line += fmt.Sprintf("  late %d", s.Late)
	}
	return line + fmt.Sprintf("  p50 %.2fms p99 %.2fms", p.P50, p.P99)
}

func labelList(m map[string]uint64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%q %d", k, m[k]) // quoted: server-controlled text
	}
	return strings.Join(parts, ", ")
}

func writeText(w io.Writer, s *probe.Summary) error {
	var b strings.Builder
	pct := 0.0
	if s.Requests > 0 {
		pct = 100 * float64(s.Failed()) / float64(s.Requests)
	}
	if s.Interrupted {
		b.WriteString("interrupted: stopped sending; requests in flight were waited for and recorded\n")
	}
	target := "as fast as possible"
	if s.TargetRate > 0 {
		target = fmt.Sprintf("target %g/s", s.TargetRate)
	}
	fmt.Fprintf(&b, "requests %d  ok %d  failed %d (%.3g%%)  rate %.1f/s (%s)\n",
		s.Requests, s.OK, s.Failed(), pct, s.Rate, target)
	if fl := cmdutil.Counts(s.Failures, timeline.FailureClasses); fl != "" {
		fmt.Fprintf(&b, "failures  %s\n", fl)
	}
	l := s.LatencyMS
	fmt.Fprintf(&b, "latency   p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	if s.Late > 0 {
		fmt.Fprintf(&b, "late      %d sends started more than %gms behind schedule (max %.1fms): no free worker in time, or a busy machine\n",
			s.Late, s.LateAfterMS, s.MaxLateMS)
	}
	if len(s.Replicas) > 0 {
		fmt.Fprintf(&b, "replicas  %s\n", labelList(s.Replicas))
	}
	if len(s.Versions) > 0 {
		fmt.Fprintf(&b, "versions  %s\n", labelList(s.Versions))
	}
	if note := s.HiddenRetries(); note != "" {
		fmt.Fprintf(&b, "methods   %s\n", note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFleetText adds a row per worker and per node under the merged summary.
func writeFleetText(w io.Writer, res *fleet.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nWORKER\tPOD\tNODE\tSTATE\tREQUESTS\tOK\tFAILED\tP99\tWHY\n")
	for _, wk := range res.Workers {
		s := wk.Summary
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%.2fms\t%s\n", wk.Index, dash(wk.Pod), dash(wk.Node), wk.State,
			s.Requests, s.OK, s.Failed(), s.LatencyMS.P99, dash(wk.Reason))
	}
	fmt.Fprintf(tw, "\nNODE\tWORKERS\tREQUESTS\tOK\tFAILED\tP99\n")
	for _, n := range res.Nodes {
		s := n.Summary
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2fms\n", n.Name, ints(n.Workers), s.Requests, s.OK, s.Failed(), s.LatencyMS.P99)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ints(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}
