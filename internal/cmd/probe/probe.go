// Package probe is the `rollsafe probe` command: flags in, probe.Run, output out.
package probe

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/probe/fleet"
	"github.com/rollsafe/rollsafe/timeline"
)

type options struct {
	cfg          probe.Config
	headers      []string
	body         string
	bodyFile     string
	protocol     string
	versionRegex string
	record       string
	output       string
	maxFailures  int64
	errorBudget  string
	observe      observeOptions
	fleet        fleetOptions
}

// NewCmd builds `rollsafe probe URL`.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, &options{}) }

// newCmd binds the flags to o (tests read o back).
func newCmd(f *cmdutil.Factory, o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe URL",
		Short: "Send traffic at a URL through a rollout and classify every failure",
		Long: `Send requests at URL on a fixed schedule (open model: latency counts from the
time a request was due, so a stalled server cannot hide) and record every one:
status, failure class, latency, which replica answered, which version.

Failure classes: http_500 http_502 http_503 http_504 http_5xx http_4xx
conn_refused conn_reset eof timeout tls dns other.

Each request gets one attempt (no transparent retries) and an X-Amzn-Trace-Id
that the ALB writes into its access log. Ctrl-C stops sending, waits for the
requests in flight and flushes the record and the summary.

A proxy in the path may retry where the probe does not: by default nginx
(ingress-nginx) passes an idempotent request (GET, HEAD, OPTIONS, TRACE,
PUT, DELETE) to another upstream after an error or timeout, but not a POST,
LOCK or PATCH it has already sent. A run whose every request was idempotent may then pass
while clients' POSTs fail; the summary says so ("idempotent_only" in JSON).
Send the path's writes too: -X POST --body '...'.

With --kube, the pods (and their EndpointSlice endpoints, Deployments and
ReplicaSets) matching --namespace/--selector are watched through the
Kubernetes API; with --target-group-arn, DescribeTargetHealth is polled every
--poll-interval. Their state changes go into the --record file beside the
requests (so both need --record), and "rollsafe report" lists, for every
failed request, the pod and target states at that instant. Either source
failing to start (kubeconfig, RBAC, unreachable server, wrong ARN) stops the
probe before it sends anything.

With --workers N and --kube, the probe runs in the cluster as an Indexed
Job of N pods of --image: the workers share one schedule (--rate in all,
every N-th slot each, from --start-delay after the Job is created), so
every record's seq and trace id is unique across them; their records come
back through the API from the pods' logs and merge into --record and one
summary, with a row per worker and per node. -c is per worker. Pods are
watched into --record only with --selector. Ctrl-C or an error deletes the
Job and its pods, and waits until they are gone. A worker whose pod never
starts (--start-delay + --start-timeout) or that dies before its last
record is reported with why, and the run exits 3: the recording has a hole.
The Role this needs is in deploy/probe.

Exit status: 0 within budget; 1 past --max-failures/--error-budget (the
server answered at least once, then failed); 2 bad usage, including a
--record file that cannot be created, a kubeconfig that cannot be loaded
and an ARN the ELBv2 API rejected; 3 could not run: the URL never answered
(every request refused, timed out or cut before a response; one line says
so), no request was sent, the Kubernetes or ELBv2 API could not be reached
or refused our identity (RBAC, credentials), writing the --record file
failed during the run, or a --workers worker was lost.`,
		Example: `  rollsafe probe https://app.example.com/healthz --rate 50 --duration 10m --record run.ndjson
  rollsafe probe http://127.0.0.1:1325/ --requests 1000 --error-budget 0.1% --output json
  rollsafe probe https://app.example.com/orders -X POST -H 'Content-Type: application/json' --body '{"probe":true}'
  rollsafe probe https://app.example.com/ --kube -n prod -l app=web --record run.ndjson
  rollsafe probe https://app.example.com/ --kube -n probes --workers 8 --rate 4000 -d 1h --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/rollsafe:v1 --record run.ndjson`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.cfg.URL = args[0]
			return runProbe(cmd, f, o)
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&o.cfg.Rate, "rate", 50, "requests per second on a fixed schedule; 0 = as fast as --connections allow")
	fl.IntVarP(&o.cfg.Connections, "connections", "c", probe.DefaultConnections, "concurrent workers and keep-alive connections")
	fl.BoolVar(&o.cfg.NewConn, "new-conn", false, "open a new TCP/TLS connection per request (like curl in a loop)")
	fl.DurationVarP(&o.cfg.Duration, "duration", "d", 0, "how long to send (0: until --requests or Ctrl-C)")
	fl.Uint64Var(&o.cfg.Requests, "requests", 0, "how many requests to send (0: until --duration or Ctrl-C)")
	fl.DurationVar(&o.cfg.Timeout, "timeout", probe.DefaultTimeout, "per-request timeout, from send to the end of the body")
	fl.DurationVar(&o.cfg.IdleConnTimeout, "idle-timeout", probe.DefaultIdleConnTimeout,
		"close keep-alive connections idle this long: keep it below the load balancer's idle timeout (ALB: 60s), or a request sent as the LB closes the connection fails without reaching it")
	fl.StringVarP(&o.cfg.Method, "method", "X", "GET", "HTTP method")
	fl.StringArrayVarP(&o.headers, "header", "H", nil, `request header "Name: value" (repeatable; "Host: x" sets the Host)`)
	fl.StringVar(&o.body, "body", "", "request body")
	fl.StringVar(&o.bodyFile, "body-file", "", "read the request body from this file")
	fl.BoolVarP(&o.cfg.Insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.StringVar(&o.protocol, "http", string(probe.ProtocolAuto), "HTTP version over TLS: auto (ALPN h2 or 1.1), 1.1 or 2")
	fl.StringVar(&o.cfg.ReplicaHeader, "replica-header", probe.DefaultReplicaHeader, "response header naming the replica that answered")
	fl.StringVar(&o.cfg.VersionHeader, "version-header", "", "response header carrying the app version")
	fl.StringVar(&o.versionRegex, "version-regex", "", "regexp finding the version in the body (first group, or the match)")
	fl.StringVar(&o.record, "record", "", `stream every request to this NDJSON timeline file ("-" for stdout)`)
	fl.StringVarP(&o.output, "output", "o", "text", "summary format: text or json")
	fl.Int64Var(&o.maxFailures, "max-failures", -1, "exit 1 when more requests than this fail (-1: no limit)")
	fl.StringVar(&o.errorBudget, "error-budget", "", `exit 1 when the failed share exceeds this ("0.1%" or "0.001")`)
	fl.StringVar(&o.cfg.Scenario, "scenario", "", "label every record with this scenario name")
	fl.DurationVar(&o.cfg.LateAfter, "late-after", probe.DefaultLateAfter, "count a send as late when it starts this far behind schedule")
	ob := &o.observe
	fl.BoolVar(&ob.kube, "kube", false, "record pod, endpoint and rollout states from the Kubernetes API into --record")
	fl.StringVarP(&ob.selector, "selector", "l", "", `label selector for --kube ("app=web")`)
	ob.flags = cmdutil.AddKubeFlags(fl, "namespace to watch with --kube (default: the kubeconfig context's)")
	fl.StringVar(&ob.targetGroupARN, "target-group-arn", "", "record this target group's target health (DescribeTargetHealth) into --record")
	fl.StringVar(&ob.awsEndpoint, "aws-endpoint", "", "ELBv2 API endpoint for --target-group-arn (the lab's, or a proxy)")
	fl.StringVar(&ob.region, "region", "", "AWS region for --target-group-arn (default: the AWS config chain's)")
	fl.DurationVar(&ob.pollInterval, "poll-interval", 5*time.Second, "time between DescribeTargetHealth polls (keep ≥ 1s on AWS: it is rate limited)")
	addFleetFlags(fl, &o.fleet)
	return cmd
}

// prepare turns flags into a Config and a Budget; every error names its
// flag and the value given, so the library's own checks never speak.
func prepare(o *options) (probe.Budget, error) {
	budget := probe.NoBudget
	if o.maxFailures < -1 {
		return budget, cmdutil.UsageErrorf("--max-failures %d: must be ≥ 0, or -1 for no limit", o.maxFailures)
	}
	budget.MaxFailures = o.maxFailures
	if o.errorBudget != "" {
		r, err := probe.ParseRatio(o.errorBudget)
		if err != nil {
			return budget, cmdutil.UsageErrorf("--error-budget %s: want a share like 0.1%% or 0.001 within 0..100%%", o.errorBudget)
		}
		budget.MaxRatio = r
	}
	c := &o.cfg
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return budget, cmdutil.UsageErrorf("--rate %v: must be a finite number ≥ 0", c.Rate)
	case c.Connections < 1:
		return budget, cmdutil.UsageErrorf("--connections %d: must be at least 1", c.Connections)
	case c.Duration < 0:
		return budget, cmdutil.UsageErrorf("--duration %v: must be ≥ 0", c.Duration)
	case c.Timeout <= 0:
		return budget, cmdutil.UsageErrorf("--timeout %v: must be positive", c.Timeout)
	case c.LateAfter <= 0:
		return budget, cmdutil.UsageErrorf("--late-after %v: must be positive", c.LateAfter)
	case c.IdleConnTimeout <= 0:
		return budget, cmdutil.UsageErrorf("--idle-timeout %v: must be positive", c.IdleConnTimeout)
	case strings.TrimSpace(c.Method) == "" || strings.ContainsAny(c.Method, " \t\r\n"):
		return budget, cmdutil.UsageErrorf("--method %q: want an HTTP method such as GET or POST", c.Method)
	case strings.TrimSpace(c.ReplicaHeader) == "":
		return budget, cmdutil.UsageErrorf("--replica-header %q: want a header name", c.ReplicaHeader)
	}
	switch p := probe.Protocol(o.protocol); p {
	case probe.ProtocolAuto, probe.ProtocolHTTP1, probe.ProtocolHTTP2:
		if p == probe.ProtocolHTTP2 && !strings.HasPrefix(strings.ToLower(c.URL), "https://") {
			return budget, cmdutil.UsageErrorf("--http 2: needs an https URL (h2 is negotiated by TLS ALPN)")
		}
		c.Protocol = p
	default:
		return budget, cmdutil.UsageErrorf("--http %s: want auto, 1.1 or 2", o.protocol)
	}
	c.Headers = http.Header{}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
			return budget, cmdutil.UsageErrorf("--header %q: want \"Name: value\"", h)
		}
		c.Headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	switch {
	case o.body != "" && o.bodyFile != "":
		return budget, cmdutil.UsageErrorf("--body and --body-file: give one")
	case o.body != "":
		c.Body = []byte(o.body)
	case o.bodyFile != "":
		b, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return budget, cmdutil.FileFlagError("--body-file", o.bodyFile, err)
		}
		c.Body = b
	}
	if o.versionRegex != "" {
		re, err := regexp.Compile(o.versionRegex)
		if err != nil {
			return budget, cmdutil.UsageErrorf("--version-regex %q: %v", o.versionRegex, err)
		}
		c.VersionRegex = re
	}
	return budget, nil
}

// neverAnswered is the one line for a run in which no request got an HTTP
// response: a gate that counted only refusals or timeouts measured nothing
// about a rollout, so it must not pass (or fail) as if it had.
func neverAnswered(url string, s *probe.Summary) error {
	if s.Requests == 0 {
		return fmt.Errorf("%s: no request was sent", url)
	}
	return fmt.Errorf("%s never answered: none of %d requests got a response (%s)",
		url, s.Requests, cmdutil.Counts(s.Failures, timeline.FailureClasses))
}

func runProbe(cmd *cobra.Command, f *cmdutil.Factory, o *options) error {
	out, err := cmdutil.ParseOutput(o.output, cmdutil.OutputText, cmdutil.OutputJSON)
	if err != nil {
		return err
	}
	budget, err := prepare(o)
	if err != nil {
		return err
	}
	if o.fleet.workerOf > 0 {
		return runWorker(cmd, f, o)
	}
	if err := checkFleet(o); err != nil {
		return err
	}
	o.observe.fleet = o.fleet.workers > 0
	if err := o.observe.check(o.record); err != nil {
		return err
	}
	rec, sink, err := openRecord(o, out)
	if err != nil {
		return err
	}
	var obs *observers
	if o.observe.any() {
		if obs, err = startObservers(cmd.Context(), &o.observe, rec, f.IO.ErrOut); err != nil {
			discard(rec, o.record)
			return err
		}
	}
	start := time.Now()
	progress := cmdutil.NewProgress(f.IO)
	if progress.On() {
		o.cfg.Progress = func(s *probe.Summary) { progress.Printf("%s", progressLine(s, time.Since(start))) }
	}
	var res *fleet.Result
	var sum *probe.Summary
	var runErr error
	if o.fleet.workers > 0 {
		if res, runErr = runFleet(cmd, f, o, sink); res != nil {
			sum = res.Summary
		}
	} else {
		sum, runErr = probe.Run(cmd.Context(), o.cfg, sink)
	}
	progress.Clear()
	obsErr := obs.stop() // the watchers end with the probe; their last records are written
	if sum == nil {      // the Config was refused, or the Job not created: nothing was sent
		discard(rec, o.record)
		if res == nil && o.fleet.workers > 0 {
			return runErr
		}
		return cmdutil.UsageErrorf("%v", runErr)
	}
	if obsErr != nil && runErr == nil {
		runErr = fmt.Errorf("recording %s: %w", o.record, obsErr)
	}
	if rec != nil {
		if err := rec.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("recording %s: %w", o.record, err)
		}
	}
	if err := render(f.IO.Out, out, sum, res); err != nil {
		return err
	}
	if runErr != nil {
		return runErr // exit 3: the record is incomplete
	}
	if res != nil {
		if lost := res.Lost(); len(lost) > 0 {
			return lostError(lost, o.fleet.workers)
		}
	}
	if sum.Answered == 0 {
		return neverAnswered(o.cfg.URL, sum)
	}
	if why := budget.Exceeded(sum); why != "" {
		return cmdutil.Failedf("error budget exceeded: %s", why)
	}
	return nil
}

// openRecord creates the --record file, if one is asked for.
func openRecord(o *options, out cmdutil.Output) (*timeline.Writer, timeline.Sink, error) {
	if o.record == "" {
		return nil, nil, nil
	}
	if o.record == "-" && out == cmdutil.OutputJSON {
		return nil, nil, cmdutil.UsageErrorf("--record - and --output json both want stdout")
	}
	rec, err := timeline.Create(o.record)
	if err != nil {
		// Before anything is sent, like every other bad flag: exit 2.
		return nil, nil, cmdutil.FileFlagError("--record", o.record, err)
	}
	return rec, rec.Write, nil
}

// discard closes and removes a record file that got nothing worth keeping.
func discard(rec *timeline.Writer, path string) {
	if rec != nil {
		rec.Close()
		os.Remove(path)
	}
}

func render(w io.Writer, out cmdutil.Output, s *probe.Summary, res *fleet.Result) error {
	switch {
	case out == cmdutil.OutputJSON && res != nil:
		return cmdutil.WriteJSON(w, fleetOutput{Summary: s, Job: res.Job, Workers: res.Workers, Nodes: res.Nodes})
	case out == cmdutil.OutputJSON:
		return cmdutil.WriteJSON(w, s)
	}
	if err := writeText(w, s); err != nil || res == nil {
		return err
	}
	return writeFleetText(w, res)
}
