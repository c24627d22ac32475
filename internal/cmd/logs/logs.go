// Package logs is the `rollsafe logs` command: flags in, logs.Summarize,
// the summary out.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/logs"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

type options struct {
	logs    logs.Options
	targets string
	record  string
	output  string
}

// NewCmd builds `rollsafe logs`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &options{}
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
		RunE: func(cmd *cobra.Command, inputs []string) error { return run(cmd.Context(), f, o, inputs) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&o.targets, "targets", "", "NDJSON timeline with target records, to find failures on draining targets")
	fl.StringVar(&o.record, "record", "", "write every log line as a timeline request record (NDJSON) to this file, - for stdout")
	fl.StringVar(&o.logs.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// inputs (default: AWS)")
	fl.StringVar(&o.logs.S3Endpoint, "aws-endpoint", "", "alias of --s3-endpoint")
	fl.StringVar(&o.logs.Region, "region", "", "AWS region for s3:// inputs (default: the AWS config chain)")
	fl.IntVar(&o.logs.Workers, "workers", 0, "parse goroutines (0: one per CPU)")
	return cmd
}

func run(ctx context.Context, f *cmdutil.Factory, o *options, inputs []string) error {
	out, err := cmdutil.ParseOutput(o.output, cmdutil.OutputText, cmdutil.OutputJSON)
	if err != nil {
		return err
	}
	if o.logs.Workers < 0 {
		return cmdutil.UsageErrorf("--workers %d: want 0 (one per CPU) or more", o.logs.Workers)
	}
	if o.targets != "" {
		if o.logs.Targets, err = logs.LoadTargets(o.targets); err != nil {
			return cmdutil.UsageErrorf("--targets %v", err)
		}
	}
	var rec *timeline.Writer
	if o.record != "" {
		if rec, err = timeline.Create(o.record); err != nil {
			return cmdutil.FileFlagError("--record", o.record, err)
		}
		o.logs.Record = rec
	}
	o.logs.Counters = new(accesslog.Counters)
	stopProgress := progress(cmdutil.NewProgress(f.IO), o.logs.Counters)
	res, err := logs.Summarize(ctx, inputs, o.logs)
	stopProgress()
	if err != nil {
		return inputError(err)
	}
	if rec != nil {
		if err := rec.Close(); err != nil {
			return fmt.Errorf("--record %s: %w", o.record, err)
		}
	}
	if err := render(f.IO.Out, out, res); err != nil {
		return err
	}
	return verdict(f.IO.ErrOut, res)
}

// inputError: a local input that cannot be read is the user's to fix
// (exit 2); an s3:// one is the network's or the bucket's (exit 3).
func inputError(err error) error {
	var ie *accesslog.InputError
	if errors.As(err, &ie) && !strings.HasPrefix(ie.Input, "s3://") {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}

// verdict is the exit after the summary: 3 when interrupted (it covers
// only part), 2 with each bad line or file on stderr.
func verdict(errOut io.Writer, res *logs.Result) error {
	switch {
	case res.Interrupted:
		return errors.New("interrupted: the summary covers only what was read")
	case res.ProblemCount > 0:
		for _, p := range res.Problems {
			fmt.Fprintln(errOut, p)
		}
		if more := res.ProblemCount - int64(len(res.Problems)); more > 0 {
			fmt.Fprintf(errOut, "... and %d more\n", more)
		}
		return cmdutil.UsageErrorf("%d bad lines and %d unreadable files (listed above); the summary covers the rest", res.BadLines, res.BadFiles)
	}
	return nil
}

func render(w io.Writer, out cmdutil.Output, res *logs.Result) error {
	if out == cmdutil.OutputJSON {
		return cmdutil.WriteJSON(w, res)
	}
	return renderText(w, res)
}

func renderText(w io.Writer, r *logs.Result) error {
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
