// Package soak is the `rollsafe soak` command: flags in, soak.Run, output out.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/soak"
	"github.com/rollsafe/rollsafe/timeline"
)

type options struct {
	cfg           soak.Config
	kube          *cmdutil.KubeFlags
	trigger       string
	versionRegex  string
	errorBudget   string
	record        string
	output        string
	metricsListen string
	statsd        string
}

// NewCmd builds `rollsafe soak`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "soak --namespace NS --deployment NAME --url URL",
		Short: "Roll a Deployment over and over and count lost requests",
		Long: `Roll a Deployment again and again under constant traffic and count, for each
rollout, the requests that failed: a race that shows once an hour shows up.

Each rollout patches the pod template (--trigger), waits until the rollout is
complete as "kubectl rollout status" decides (spec observed, every replica
updated and available, no old replica left; the progress deadline fails it),
then until the new version answers through --url, then --settle, and repeats.
Traffic runs the whole time at --rate; every request is attributed to the
rollout whose window (its patch until the next rollout's patch) contains the
moment it was sent.

Triggers:
  annotation   sets the pod-template annotation rollsafe.dev/restartedAt (like
               "kubectl rollout restart"); the new version is recognized by
               the replica that answered (--replica-header, X-Served-By) being
               a pod of the Deployment's new ReplicaSet.
  env:NAME     sets env NAME of the first container to a sequence number;
               the new version answers it in --version-header/--version-regex
               (or as --expect-version with {seq} in it).
  arg:INDEX    sets args[INDEX] of the first container likewise.

Needs, in the namespace: get/list/watch/patch deployments, get/list/watch
pods and replicasets (deploy/soak/rbac.yaml); nothing else.

Exit status: 0 every rollout clean, 1 a rollout lost a request (or the lost
share passed --error-budget) or did not complete, 2 bad usage or input, 3 the
API or the URL unreachable, a permission missing, or the --metrics-listen
address taken.`,
		Example: `  rollsafe soak -n shop --deployment api --url https://api.example.com/ --rollouts 20
  rollsafe soak -n shop --deployment api --url http://127.0.0.1:8080/ --trigger env:VERSION \
      --version-header X-Version --duration 2h --metrics-listen :9090 --record soak.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), f, o) },
	}
	c := &o.cfg
	fl := cmd.Flags()
	fl.StringVar(&c.Deployment, "deployment", "", "the Deployment to roll (required)")
	fl.StringVar(&c.Probe.URL, "url", "", "where the app answers, through the load balancer (required)")
	o.kube = cmdutil.AddKubeFlags(fl, "namespace of the Deployment (default: the kubeconfig context's, or the pod's in a cluster)")
	fl.StringVar(&o.trigger, "trigger", "annotation", "what a rollout changes: annotation, env:NAME or arg:INDEX")
	fl.StringVar(&c.Probe.VersionHeader, "version-header", "", "response header carrying the app version (env/arg triggers)")
	fl.StringVar(&o.versionRegex, "version-regex", "", "regexp finding the version in the body (first group, or the match)")
	fl.StringVar(&c.Probe.ReplicaHeader, "replica-header", probe.DefaultReplicaHeader, "response header naming the pod that answered (annotation trigger)")
	fl.StringVar(&c.ExpectVersion, "expect-version", "", `version the new pods answer, {seq} for the trigger's sequence (default "{seq}")`)
	fl.IntVar(&c.Rollouts, "rollouts", 0, "stop after this many rollouts (0: no limit)")
	fl.DurationVarP(&c.Duration, "duration", "d", 0, "start no rollout after this long (0: no limit)")
	fl.DurationVar(&c.RolloutTimeout, "rollout-timeout", soak.DefaultRolloutTimeout, "per rollout, from the patch to the new version answering")
	fl.DurationVar(&c.ReadyTimeout, "ready-timeout", soak.DefaultReadyTimeout, "how long --url may take to answer once before the first rollout")
	fl.DurationVar(&c.Settle, "settle", 30*time.Second, "pause after each rollout (old pods drain, targets deregister)")
	fl.BoolVar(&c.KeepGoing, "keep-going", false, "go on after a rollout that did not complete (default: stop)")
	fl.Float64Var(&c.Probe.Rate, "rate", 20, "requests per second, constant, across all rollouts")
	fl.IntVarP(&c.Probe.Connections, "connections", "c", probe.DefaultConnections, "concurrent workers and keep-alive connections")
	fl.DurationVar(&c.Probe.Timeout, "timeout", probe.DefaultTimeout, "per-request timeout")
	fl.BoolVarP(&c.Probe.Insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.StringVar(&c.Probe.Scenario, "scenario", "", "label every record with this name")
	fl.StringVar(&o.errorBudget, "error-budget", "", `allow this share of lost requests ("0.1%" or "0.001"; default: none)`)
	fl.StringVar(&o.record, "record", "", `stream every request and rollout mark to this NDJSON file ("-" for stdout)`)
	fl.StringVarP(&o.output, "output", "o", "text", "text or json (a line per rollout, then the total)")
	fl.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on this address (\":9090\")")
	fl.StringVar(&o.statsd, "statsd", "", "send metrics to this StatsD agent (\"127.0.0.1:8125\")")
	return cmd
}

// prepare maps flags onto the Config; every error names its flag.
func prepare(o *options) (maxRatio float64, out cmdutil.Output, err error) {
	maxRatio = -1
	if out, err = cmdutil.ParseOutput(o.output, cmdutil.OutputText, cmdutil.OutputJSON); err != nil {
		return
	}
	c := &o.cfg
	switch {
	case c.Deployment == "":
		return maxRatio, out, cmdutil.UsageErrorf("--deployment is required")
	case c.Probe.URL == "":
		return maxRatio, out, cmdutil.UsageErrorf("--url is required")
	case c.Rollouts < 0:
		return maxRatio, out, cmdutil.UsageErrorf("--rollouts %d: must not be negative", c.Rollouts)
	case c.Probe.Rate <= 0:
		return maxRatio, out, cmdutil.UsageErrorf("--rate %v: must be positive (soak needs a constant rate)", c.Probe.Rate)
	case c.Probe.Connections < 1:
		return maxRatio, out, cmdutil.UsageErrorf("--connections %d: must be at least 1", c.Probe.Connections)
	case c.Probe.Timeout <= 0:
		return maxRatio, out, cmdutil.UsageErrorf("--timeout %v: must be positive", c.Probe.Timeout)
	case c.RolloutTimeout <= 0:
		return maxRatio, out, cmdutil.UsageErrorf("--rollout-timeout %v: must be positive", c.RolloutTimeout)
	case c.ReadyTimeout <= 0:
		return maxRatio, out, cmdutil.UsageErrorf("--ready-timeout %v: must be positive", c.ReadyTimeout)
	case c.Duration < 0:
		return maxRatio, out, cmdutil.UsageErrorf("--duration %v: must be ≥ 0", c.Duration)
	case c.Settle < 0:
		return maxRatio, out, cmdutil.UsageErrorf("--settle %v: must be ≥ 0", c.Settle)
	case o.record == "-" && out == cmdutil.OutputJSON:
		return maxRatio, out, cmdutil.UsageErrorf("--record - and --output json both want stdout")
	}
	if c.Trigger, err = soak.ParseTrigger(o.trigger); err != nil {
		return maxRatio, out, cmdutil.UsageErrorf("--trigger %v", err)
	}
	if o.versionRegex != "" {
		if c.Probe.VersionRegex, err = regexp.Compile(o.versionRegex); err != nil {
			return maxRatio, out, cmdutil.UsageErrorf("--version-regex %q: %v", o.versionRegex, err)
		}
	}
	if o.errorBudget != "" {
		if maxRatio, err = probe.ParseRatio(o.errorBudget); err != nil {
			return maxRatio, out, cmdutil.UsageErrorf("--error-budget: %v", err)
		}
	}
	return maxRatio, out, nil
}

func run(ctx context.Context, f *cmdutil.Factory, o *options) error {
	maxRatio, out, err := prepare(o)
	if err != nil {
		return err
	}
	c := &o.cfg
	if c.Client, c.Namespace, err = o.kube.Client(); err != nil {
		return err
	}
	metrics, stopMetrics, err := soak.StartMetrics(soak.MetricsConfig{Listen: o.metricsListen, StatsD: o.statsd,
		Tags: []string{"namespace:" + c.Namespace, "deployment:" + c.Deployment},
		Warn: func(err error) { fmt.Fprintf(f.IO.ErrOut, "warning: %v\n", err) }})
	if err != nil {
		return exitError(err)
	}
	defer stopMetrics()
	c.Metrics = metrics
	var rec *timeline.Writer
	if o.record != "" {
		if rec, err = timeline.Create(o.record); err != nil {
			return cmdutil.UsageErrorf("--record: %v", err)
		}
		c.Sink = rec.Write
	}
	p := newPrinter(f, out)
	c.OnResult, c.Progress = p.result, p.progressFunc()
	total, runErr := soak.Run(ctx, *c)
	p.progress.Clear()
	if rec != nil {
		runErr = closeRecord(rec, o.record, total == nil, runErr)
	}
	if total == nil {
		return exitError(runErr)
	}
	return verdict(f.IO.Out, out, total, maxRatio, runErr, p.err)
}

// closeRecord closes the --record file, and removes it when nothing was
// sent (no half-empty file left behind). A close error is the run's error
// unless it already has one.
func closeRecord(rec *timeline.Writer, path string, nothingSent bool, runErr error) error {
	if err := rec.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("--record %s: %w", path, err)
	}
	if nothingSent {
		os.Remove(path)
	}
	return runErr
}

// verdict prints the totals and decides the exit: the run's own error
// first, then a failure writing the results, then the gate.
func verdict(w io.Writer, out cmdutil.Output, total *soak.Total, maxRatio float64, runErr, outErr error) error {
	gate := total.Gate(maxRatio)
	if err := renderTotal(w, out, total, gate); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return exitError(runErr)
	case outErr != nil:
		return outErr
	case gate != "":
		return cmdutil.Failedf("soak failed: %s", gate)
	}
	return nil
}

// exitError maps soak's errors to the exit codes: input the user can fix
// is 2; a missing permission, an unreachable API or URL is 3.
func exitError(err error) error {
	var ie *soak.InputError
	if errors.As(err, &ie) {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}

// printer streams each rollout's result to Out (a JSON line or a text
// line) above the progress line, and keeps the first write error.
type printer struct {
	out      io.Writer
	json     *json.Encoder // nil: text
	progress *cmdutil.Progress
	err      error
}

func newPrinter(f *cmdutil.Factory, out cmdutil.Output) *printer {
	p := &printer{out: f.IO.Out, progress: cmdutil.NewProgress(f.IO)}
	if out == cmdutil.OutputJSON {
		p.json = json.NewEncoder(f.IO.Out)
	}
	return p
}

func (p *printer) result(r *soak.Result) {
	p.progress.Above(func() {
		var err error
		if p.json != nil {
			err = p.json.Encode(r)
		} else {
			_, err = fmt.Fprintln(p.out, resultLine(r))
		}
		if err != nil && p.err == nil {
			p.err = err
		}
	})
}

// progressFunc is soak's Progress callback, nil when no line is drawn.
func (p *printer) progressFunc() func(soak.Progress) {
	if !p.progress.On() {
		return nil
	}
	return func(s soak.Progress) { p.progress.Printf("%s", progressLine(s)) }
}

func renderTotal(w io.Writer, out cmdutil.Output, t *soak.Total, gate string) error {
	if out == cmdutil.OutputJSON {
		return json.NewEncoder(w).Encode(soak.Summary{Total: t, Gate: gate})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d rollouts in %s: %d clean, %d lost requests, %d failed", t.Rollouts,
		t.End.Sub(t.Start).Round(time.Second), t.Clean, t.LostRollout, t.Failed)
	if t.Interrupted > 0 {
		fmt.Fprintf(&b, ", %d interrupted", t.Interrupted)
	}
	fmt.Fprintf(&b, "\nrequests %d, lost %d", t.Requests, t.Lost)
	if fl := cmdutil.Counts(t.Failures, timeline.FailureClasses); fl != "" {
		fmt.Fprintf(&b, " (%s)", fl)
	}
	if fl := cmdutil.Counts(t.Unattributed, timeline.FailureClasses); fl != "" {
		fmt.Fprintf(&b, "; outside any rollout: %s", fl)
	}
	if t.BeforeReady > 0 {
		fmt.Fprintf(&b, "; %d failed before the URL first answered (not counted)", t.BeforeReady)
	}
	if t.MaxSeconds > 0 {
		fmt.Fprintf(&b, "\nrollout time: mean %.1fs, max %.1fs", t.MeanSeconds, t.MaxSeconds)
	}
	if gate == "" {
		b.WriteString("\nPASS\n")
	} else {
		fmt.Fprintf(&b, "\nFAIL: %s\n", gate)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func resultLine(r *soak.Result) string {
	line := fmt.Sprintf("rollout %d", r.Rollout)
	if r.Version != "" {
		line += fmt.Sprintf(" (version %s)", r.Version)
	}
	if !r.Complete.IsZero() {
		line += fmt.Sprintf(": complete in %.1fs", r.Seconds)
	} else {
		line += fmt.Sprintf(": not complete after %.1fs", r.Seconds)
	}
	if r.NewVersionSeenAfter != nil {
		line += fmt.Sprintf(", new version answered after %.1fs", *r.NewVersionSeenAfter)
	}
	line += fmt.Sprintf(", %d requests, %d lost", r.Requests, r.Lost)
	if fl := cmdutil.Counts(r.Failures, timeline.FailureClasses); fl != "" {
		line += " (" + fl + ")"
	}
	switch r.Result {
	case soak.OutcomeFailed:
		line += " FAILED: " + r.Error
	case soak.OutcomeInterrupted:
		line += " (interrupted)"
	}
	return line
}

func progressLine(p soak.Progress) string {
	line := fmt.Sprintf("%s  rollout %d", p.Elapsed.Round(time.Second), p.Rollout)
	if p.State != "" {
		line += ": " + p.State
	}
	if p.Message != "" {
		line += " (" + p.Message + ")"
	}
	return line + fmt.Sprintf("  requests %d  lost %d", p.Total.Requests, p.Total.Lost)
}
