// Package report is the `rollsafe report` command: flags in, report.Build, output out.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

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
		Short: "Turn recorded timelines into an HTML timeline and numbers",
		Long: `Read NDJSON timelines (from probe --record, the lab, observe) and write one
self-contained HTML page: requests per bin by outcome with failures marked
by class, latency percentiles over time, which replicas answered, pod and
target state lanes, attributed causes and the failed requests. The page
loads nothing from the network. --output json prints the same numbers.`,
		Example: `  rollsafe report run.ndjson cluster.ndjson --html rollout.html
  rollsafe report run.ndjson --output json --html ""`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			out, err := cmdutil.ParseOutput(output, cmdutil.OutputText, cmdutil.OutputJSON)
			if err != nil {
				return err
			}
			if opts.Bin <= 0 {
				return cmdutil.UsageErrorf("--bin %v: must be positive", opts.Bin)
			}
			rep, err := report.Build(files, opts)
			if err != nil {
				return cmdutil.UsageErrorf("%v", err)
			}
			if html != "" {
				if err := writeHTML(html, rep); err != nil {
					return err
				}
			}
			if out == cmdutil.OutputJSON {
				enc := json.NewEncoder(f.IO.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			s := rep.Summary
			fmt.Fprintf(f.IO.Out, "%d requests, %d ok, %d failed; p50 %.3fms p99 %.3fms max %.3fms; %d lanes\n",
				s.Requests, s.OK, s.Failed(), s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.Max, len(rep.Lanes))
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
	return cmd
}

// writeHTML writes to a temporary file first so a failed run never leaves
// half a page where a good one was.
func writeHTML(path string, rep *report.Report) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return cmdutil.UsageErrorf("--html: %v", err)
	}
	if err := report.HTML(f, rep); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
