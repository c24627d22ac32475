// Package logs is the `rollsafe logs` command: summarise ALB access logs
// and, given a target timeline, list the failures routed to draining targets.
package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options are the command's flags and arguments.
type Options struct {
	IO         *cmdutil.IOStreams
	Inputs     []string
	Targets    string
	Record     string
	Output     cmdutil.Output
	S3Endpoint string
	Region     string
	Workers    int
}

// NewCmd builds `rollsafe logs`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IO}
	var output string
	cmd := &cobra.Command{
		Use:   "logs PATH...",
		Short: "Summarise ALB access logs: failures per target, status, minute; failures on draining targets",
		Long: `Reads ALB access logs from files, directories (recursively), gzip files and
s3://bucket/prefix, and prints requests and failures (5xx or no status) per
target, per status (load balancer and target), per minute (of when the load
balancer received the request, request_creation_time), and error_reason
counts. With --targets (an NDJSON timeline with target records, e.g. from the
elbv2 source or the lab), it lists the failures whose target was draining when
the load balancer received the request.

Lines or files that cannot be read are reported with file:line; the rest is
still summarised, and the exit code is 2.`,
		Example: `  rollsafe logs ./alb-logs/
  rollsafe logs s3://my-alb-logs/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/
  rollsafe logs --targets targets.ndjson --record requests.ndjson access.log.gz`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := cmdutil.ParseOutput(output, cmdutil.OutputText, cmdutil.OutputJSON)
			if err != nil {
				return err
			}
			if opts.Workers < 0 {
				return cmdutil.UsageErrorf("--workers %d: want 0 (one per CPU) or more", opts.Workers)
			}
			opts.Output, opts.Inputs = out, args
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&opts.Targets, "targets", "", "NDJSON timeline with target records, to find failures on draining targets")
	fl.StringVar(&opts.Record, "record", "", "write every log line as a timeline request record (NDJSON) to this file, - for stdout")
	fl.StringVar(&opts.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// inputs (default: AWS)")
	fl.StringVar(&opts.S3Endpoint, "aws-endpoint", "", "alias of --s3-endpoint")
	fl.StringVar(&opts.Region, "region", "", "AWS region for s3:// inputs (default: the AWS config chain)")
	fl.IntVar(&opts.Workers, "workers", 0, "parse goroutines (0: one per CPU)")
	return cmd
}

// Result is the JSON output.
type Result struct {
	Files        int                 `json:"files"`
	Bytes        int64               `json:"bytes"`
	Lines        int64               `json:"lines"`
	Requests     int64               `json:"requests"`
	Failures     int64               `json:"failures"`
	First        time.Time           `json:"first,omitzero"`
	Last         time.Time           `json:"last,omitzero"`
	Seconds      float64             `json:"seconds"`
	Interrupted  bool                `json:"interrupted,omitempty"`
	Targets      []Bucket            `json:"targets"`
	ELBStatus    []StatusCount       `json:"elb_status"`
	TargetStatus []StatusCount       `json:"target_status"`
	Minutes      []Bucket            `json:"minutes"`
	ErrorReasons []StatusCount       `json:"error_reasons"`
	Draining     *DrainingResult     `json:"draining,omitempty"`
	Failed       []accesslog.Failure `json:"failed_requests"`
	NotListed    int64               `json:"failed_requests_not_listed,omitempty"`
	BadLines     int64               `json:"bad_lines"`
	BadFiles     int                 `json:"bad_files"`
	Problems     []string            `json:"problems,omitempty"`
}

// Bucket is requests and failures under one key (a target or a minute).
type Bucket struct {
	Key string `json:"key"`
	accesslog.Count
}

// StatusCount is how often one status (or error reason) appeared; "-" for none.
type StatusCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// DrainingResult lists failures whose target was draining.
type DrainingResult struct {
	Timeline       string              `json:"timeline"`
	TargetsKnown   int                 `json:"targets_known"`
	UnknownTargets []string            `json:"unknown_targets,omitempty"` // failed targets the timeline never mentions
	Failures       []accesslog.Failure `json:"failures"`
}

// Run reads the logs and renders the summary.
func Run(ctx context.Context, opts *Options) error {
	var ix *accesslog.TargetIndex
	if opts.Targets != "" {
		var recs []timeline.Record
		err := timeline.ReadFile(opts.Targets, func(r *timeline.Record) error {
			recs = append(recs, *r)
			return nil
		})
		if err != nil {
			return cmdutil.UsageErrorf("--targets %v", err)
		}
		ix = accesslog.NewTargetIndex(recs)
		if ix.Len() == 0 {
			return cmdutil.UsageErrorf("--targets %s: no target records (kind \"target\" with an object)", opts.Targets)
		}
	}
	var rec *timeline.Writer
	if opts.Record != "" {
		var err error
		if rec, err = timeline.Create(opts.Record); err != nil {
			return cmdutil.UsageErrorf("--record: %v", err)
		}
	}

	scanOpts := accesslog.Options{Workers: opts.Workers, Counters: new(accesslog.Counters)}
	if hasS3(opts.Inputs) {
		cl, err := accesslog.NewS3(ctx, accesslog.S3Config{Endpoint: opts.S3Endpoint, Region: opts.Region})
		if err != nil {
			return err
		}
		scanOpts.S3 = cl
	}

	stopProgress := progress(cmdutil.NewProgress(opts.IO), scanOpts.Counters)
	start := time.Now()
	var mu sync.Mutex
	var parts []*accesslog.Summary
	st, err := accesslog.Scan(ctx, opts.Inputs, scanOpts, func() accesslog.Visitor {
		s := accesslog.NewSummary()
		mu.Lock()
		parts = append(parts, s)
		mu.Unlock()
		if rec != nil {
			return accesslog.Visitors{s, accesslog.Recorder{W: rec}}
		}
		return s
	})
	elapsed := time.Since(start)
	stopProgress()
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && !interrupted {
		var ie *accesslog.InputError
		if errors.As(err, &ie) {
			if strings.HasPrefix(ie.Input, "s3://") {
				return &cmdutil.ExitError{Code: cmdutil.ExitRuntime, Err: err}
			}
			return cmdutil.UsageErrorf("%v", err)
		}
		return err
	}
	if rec != nil {
		if cerr := rec.Close(); cerr != nil {
			return fmt.Errorf("--record %s: %w", opts.Record, cerr)
		}
	}

	sum := accesslog.NewSummary()
	for _, p := range parts {
		sum.Merge(p)
	}
	sum.SortFailures()
	res := buildResult(sum, &st, elapsed, interrupted)
	if ix != nil {
		res.Draining = &DrainingResult{Timeline: opts.Targets, TargetsKnown: ix.Len(),
			Failures: sum.JoinTargets(ix), UnknownTargets: unknownTargets(sum, ix)}
		res.Failed = sum.FailureList
	}

	if opts.Output == cmdutil.OutputJSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := renderText(opts.IO.Out, res); err != nil {
		return err
	}

	switch {
	case interrupted:
		return &cmdutil.ExitError{Code: cmdutil.ExitRuntime, Err: errors.New("interrupted: the summary covers only what was read")}
	case !st.Clean():
		for _, p := range st.Problems {
			fmt.Fprintf(opts.IO.ErrOut, "%v\n", p)
		}
		if more := st.ProblemCount - int64(len(st.Problems)); more > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "... and %d more\n", more)
		}
		return &cmdutil.ExitError{Code: cmdutil.ExitUsage,
			Err: fmt.Errorf("%d bad lines and %d unreadable files (listed above); the summary covers the rest", st.BadLines, st.BadFiles)}
	}
	return nil
}

func hasS3(inputs []string) bool {
	return slices.ContainsFunc(inputs, func(s string) bool { return strings.HasPrefix(s, "s3://") })
}

// unknownTargets lists failed targets the timeline never mentions: a
// timeline from another target group or time range would otherwise make
// "no failure on a draining target" look like a clean bill.
func unknownTargets(sum *accesslog.Summary, ix *accesslog.TargetIndex) []string {
	var out []string
	for _, f := range sum.FailureList {
		if f.Target != accesslog.NoTarget && !ix.Has(f.Target) && !slices.Contains(out, f.Target) {
			out = append(out, f.Target)
		}
	}
	slices.Sort(out)
	return out
}

func buildResult(sum *accesslog.Summary, st *accesslog.Stats, elapsed time.Duration, interrupted bool) *Result {
	res := &Result{
		Files: st.Files, Bytes: st.Bytes, Lines: st.Lines, Requests: sum.Requests, Failures: sum.Failures,
		First: sum.First, Last: sum.Last, Seconds: elapsed.Seconds(), Interrupted: interrupted,
		Failed: sum.FailureList, NotListed: sum.FailuresNotListed, BadLines: st.BadLines, BadFiles: st.BadFiles,
	}
	for k, c := range sum.Targets {
		res.Targets = append(res.Targets, Bucket{Key: k, Count: *c})
	}
	slices.SortFunc(res.Targets, func(a, b Bucket) int {
		if a.Failures != b.Failures {
			return int(b.Failures - a.Failures)
		}
		if a.Requests != b.Requests {
			return int(b.Requests - a.Requests)
		}
		return strings.Compare(a.Key, b.Key)
	})
	for m, c := range sum.Minutes {
		res.Minutes = append(res.Minutes, Bucket{Key: time.Unix(m*60, 0).UTC().Format("2006-01-02T15:04Z"), Count: *c})
	}
	slices.SortFunc(res.Minutes, func(a, b Bucket) int { return strings.Compare(a.Key, b.Key) })
	res.ELBStatus = statusCounts(sum.ELBStatus)
	res.TargetStatus = statusCounts(sum.TargetStatus)
	for k, n := range sum.ErrorReasons {
		res.ErrorReasons = append(res.ErrorReasons, StatusCount{Key: k, Count: n})
	}
	slices.SortFunc(res.ErrorReasons, func(a, b StatusCount) int { return strings.Compare(a.Key, b.Key) })
	for _, p := range st.Problems {
		res.Problems = append(res.Problems, p.Error())
	}
	return res
}

func statusCounts(m map[int]int64) []StatusCount {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make([]StatusCount, 0, len(codes))
	for _, c := range codes {
		k := "-"
		if c != 0 {
			k = fmt.Sprint(c)
		}
		out = append(out, StatusCount{Key: k, Count: m[c]})
	}
	return out
}

func renderText(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pct := func(f, n int64) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(f)/float64(n))
	}
	fmt.Fprintf(tw, "read %d files, %d lines, %.1f MB in %.2fs", r.Files, r.Lines, float64(r.Bytes)/1e6, r.Seconds)
	if r.Interrupted {
		fmt.Fprint(tw, " (interrupted)")
	}
	fmt.Fprintf(tw, "\nrequests %d, failed %d (%s)", r.Requests, r.Failures, pct(r.Failures, r.Requests))
	if !r.First.IsZero() {
		fmt.Fprintf(tw, ", %s .. %s", r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
	}
	if r.BadLines+int64(r.BadFiles) > 0 {
		fmt.Fprintf(tw, "\nbad input: %d lines, %d files (see stderr)", r.BadLines, r.BadFiles)
	}
	fmt.Fprint(tw, "\n\nTARGET\tREQUESTS\tFAILED\t\n")
	for _, b := range r.Targets {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", b.Key, b.Requests, b.Failures, pct(b.Failures, b.Requests))
	}
	fmt.Fprint(tw, "\nELB STATUS\tCOUNT\t\n")
	for _, s := range r.ELBStatus {
		fmt.Fprintf(tw, "%s\t%d\t\n", s.Key, s.Count)
	}
	fmt.Fprint(tw, "\nTARGET STATUS\tCOUNT\t\n")
	for _, s := range r.TargetStatus {
		fmt.Fprintf(tw, "%s\t%d\t\n", s.Key, s.Count)
	}
	fmt.Fprint(tw, "\nMINUTE\tREQUESTS\tFAILED\t\n")
	for _, b := range r.Minutes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", b.Key, b.Requests, b.Failures)
	}
	if len(r.ErrorReasons) > 0 {
		fmt.Fprint(tw, "\nERROR REASON\tCOUNT\t\n")
		for _, s := range r.ErrorReasons {
			fmt.Fprintf(tw, "%s\t%d\t\n", s.Key, s.Count)
		}
	}
	if d := r.Draining; d != nil {
		fmt.Fprintf(tw, "\n%d failures on draining targets (target states from %s, %d targets)\n", len(d.Failures), d.Timeline, d.TargetsKnown)
		if len(d.Failures) > 0 {
			fmt.Fprint(tw, "RECEIVED\tTARGET\tELB\tTARGET STATUS\tTRACE ID\tAT\n")
		}
		for _, f := range d.Failures {
			ts := "-"
			if f.TargetStatus != 0 {
				ts = fmt.Sprint(f.TargetStatus)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.Time.Format("2006-01-02T15:04:05.000Z07:00"), f.Target, f.ELBStatus, ts, f.TraceID, f.Pos)
		}
		if len(d.UnknownTargets) > 0 {
			fmt.Fprintf(tw, "warning: the timeline never mentions these failed targets: %s\n", strings.Join(d.UnknownTargets, ", "))
		}
	}
	return tw.Flush()
}

// progress redraws the line every 200 ms from the scan's counters; the
// returned func stops and erases it.
func progress(p *cmdutil.Progress, c *accesslog.Counters) func() {
	if !p.On() {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.Printf("reading: %d files, %d lines, %.1f MB", c.Files.Load(), c.Lines.Load(), float64(c.Bytes.Load())/1e6)
			}
		}
	})
	return func() { close(done); wg.Wait(); p.Clear() }
}
