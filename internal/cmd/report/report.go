// Package report is the `rollsafe report` command: flags in, report.Build, output out.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/attribution"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/report"
)

// NewCmd builds `rollsafe report FILE...`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	var (
		html, output string
		opts         report.Options
	)
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Explain every failed request from recorded evidence, and measure propagation P",
		Long: `Read NDJSON timelines (probe --record with --kube and --target-group-arn, the
lab's --record) and ALB access logs (files, dirs, .gz, s3://bucket/prefix/ —
told apart by content, so they can be fetched later, when S3 has them) and
attribute every failed request from evidence alone: the target the ALB chose
(access log, joined by trace id), whether it was draining (polled target
health, a window per poll), whether its pod had exited or been deleted (pod
states from the Kubernetes API). Behind instance targets (the nodes, a
Classic ELB) or an ingress controller (--target-type), the pod is inferred
from the pod states, and the cause is at best likely. Each failure gets a cause, its chain of
evidence and a confidence (certain, likely, unknown). For every target that
went draining it measures how long the load balancer kept routing to it (P),
and prints the preStop that figure calls for and the rollsafe check command
to run with it.

Writes one self-contained HTML page (a section per scenario or run: the
headline, the causes with the setting that prevents each, measured P, then
charts and lanes; it loads nothing from the network). --output json prints
every failed request with trace_id, cause, confidence and evidence, the
causes table and the propagation section.`,
		Example: `  rollsafe report run.ndjson --html rollout.html
  rollsafe report run.ndjson s3://my-alb-logs/AWSLogs/123456789012/elasticloadbalancing/ -o json --html ""
  rollsafe report lab.ndjson alb-access.log
  rollsafe report run.ndjson --target-type ingress --html ""`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			out, err := cmdutil.ParseOutput(output, cmdutil.OutputText, cmdutil.OutputJSON)
			if err != nil {
				return err
			}
			if opts.Bin <= 0 {
				return cmdutil.UsageErrorf("--bin %v: must be positive", opts.Bin)
			}
			if tt := opts.Attribution.TargetType; tt != "" && !slices.Contains(attribution.TargetTypes, tt) {
				return cmdutil.UsageErrorf("--target-type %q: want one of %s", tt, strings.Join(attribution.TargetTypes, ", "))
			}
			rep, err := report.Build(cmd.Context(), files, opts)
			if err != nil {
				return cmdutil.UsageErrorf("%v", err)
			}
			if html != "" {
				if err := cmdutil.WriteFileAtomic("--html", html, func(w io.Writer) error { return report.HTML(w, rep) }); err != nil {
					return err
				}
			}
			if out == cmdutil.OutputJSON {
				// Compact: a run with thousands of failures, each with
				// its evidence chain, is tens of MB, and indenting it
				// costs more than attributing it (pipe it to jq to read).
				return json.NewEncoder(f.IO.Out).Encode(rep)
			}
			printText(f.IO.Out, rep)
			if html != "" {
				fmt.Fprintf(f.IO.Out, "wrote %s\n", html)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&html, "html", "report.html", `write the HTML page here ("" for none)`)
	fl.StringVarP(&output, "output", "o", "text", "text or json (the report's numbers)")
	fl.DurationVar(&opts.Bin, "bin", 100*time.Millisecond, "time bin width (widened to fit 2000 bins)")
	fl.StringVar(&opts.Attribution.TargetType, "target-type", "", "what the load balancer's targets are: "+strings.Join(attribution.TargetTypes, ", ")+
		" (ingress: an ingress controller's pods, e.g. ingress-nginx); default: instance when no polled target is a pod's IP, else ip")
	return cmd
}

// printText is the story per run: the headline, the causes with their
// confidence, measured P and the check command it implies.
func printText(w io.Writer, rep *report.Report) {
	for i, run := range rep.Runs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		a := run.Attribution
		name := run.Scenario
		if name == "" {
			name = "run"
		}
		fmt.Fprintf(w, "%s: %s\n", name, a.Headline)
		if len(a.Causes) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  CAUSE\tFAILED\tCERTAIN\tLIKELY\tWHAT")
			for _, c := range a.Causes {
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\n", c.Cause, c.Count, c.Certain, c.Likely, c.What)
			}
			tw.Flush()
		}
		if g := a.Agreement; g != nil {
			fmt.Fprintf(w, "  agrees with the lab's ground truth on %d of %d (%.1f%%), %d wrongly certain\n", g.Agree, g.Compared, 100*g.Ratio, g.WronglyCertain)
		}
		if p := a.Propagation; p != nil {
			fmt.Fprintf(w, "  propagation P: max %.2f s, p95 %.2f s over %d targets (upper bound %.2f s); controller lag ≤ %.2f s\n",
				p.MaxSeconds, p.P95Seconds, len(p.Targets), p.MaxUpperSeconds, p.ControllerLagSeconds)
			fmt.Fprintf(w, "  implies preStop ≥ %gs: %s\n", p.Implied.MinPreStopSeconds, p.Implied.Command)
		}
		if s := run.Summary; s != nil && s.HiddenRetries() != "" {
			fmt.Fprintf(w, "  note: %s\n", s.HiddenRetries())
		}
		if a.Join.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", a.Join.Note)
		}
		for _, m := range a.Missing {
			fmt.Fprintf(w, "  missing: %s\n", m)
		}
	}
}
