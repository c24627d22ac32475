// Package lab is the `rollsafe lab` command: flags in, lab.Run per
// scenario, a table (or JSON) and an HTML report out.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/shlex"
	"github.com/spf13/cobra"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/report"
	"github.com/rollsafe/rollsafe/timeline"
)

type options struct {
	scenarios []string
	manifests string
	app       string
	rollouts  int
	rate      float64
	timeScale float64
	output    string
	record    string
	html      string
	accessLog string
	list      bool
	listen    string
	kube      bool
	serve     bool
	topology  string
	shutdown  string
}

// NewCmd builds `rollsafe lab`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Replay EKS + ALB rollouts on this machine with real processes and traffic",
		Long: `Runs the rollout story of an EKS Deployment behind an AWS ALB on this machine:
an ALB stand-in (target states, health checks, per-node deregistration
propagation, deregistration delay, keep-alive reuse without retries), the AWS
Load Balancer Controller's registration and readiness gates, and a Deployment
rolling update of real processes on their own loopback addresses — under
constant traffic, every request recorded and every failure attributed.

By default it plays naive, gate-only and recommended, 3 rollouts each, on
an ALB with ip targets. --topology replays them on another path: an ALB or
an NLB with instance targets (the nodes, kube-proxy to the pods), a Classic
ELB, an NLB with ip targets; --list shows every topology and scenario.`,
		Example: `  ` + f.Name + ` lab
  ` + f.Name + ` lab --scenario recommended --rollouts 5 --rate 300
  ` + f.Name + ` lab --topology clb --scenario prestop-exceeds-grace,drain-past-idle-timeout
  ` + f.Name + ` lab --manifests deploy/k8s/base --app ./my-server
  ` + f.Name + ` lab --kube --scenario recommended   # on a real control plane
  ` + f.Name + ` lab --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, f, o) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.scenarios, "scenario", nil, "scenarios to play, comma-separated, or 'all' (default naive,gate-only,recommended)")
	fl.StringVar(&o.manifests, "manifests", "", "replay this Deployment/Service/Ingress/Namespace (file, dir, or - for stdin) instead of the built-in scenarios")
	fl.StringVar(&o.app, "app", "", "command each pod runs instead of the demo API; it gets PORT, POD_IP and POD_NAME")
	fl.IntVar(&o.rollouts, "rollouts", lab.DefaultRollouts, "rollouts per scenario")
	fl.Float64Var(&o.rate, "rate", lab.DefaultRate, "probe requests per second")
	fl.Float64Var(&o.timeScale, "time-scale", lab.DefaultTimeScale, "shrink every duration by this factor (1 = real time)")
	fl.StringVarP(&o.output, "output", "o", "text", "text or json")
	fl.StringVar(&o.record, "record", "", "write every request, pod and target record here as NDJSON")
	fl.StringVar(&o.html, "report", "rollsafe-lab.html", "write the HTML timeline here ('' to skip)")
	fl.StringVar(&o.accessLog, "access-log", "", "write the load balancer stand-in's access log here (ALB and CLB; an NLB writes none)")
	fl.BoolVar(&o.list, "list", false, "list the built-in scenarios and exit")
	fl.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address of the load balancer stand-in (to curl it while the lab runs)")
	fl.BoolVar(&o.serve, "serve", false, "bring one scenario up and keep it serving (no load, no rollouts) until Ctrl-C, to point probe, soak or check --live at it")
	fl.StringVar(&o.topology, "topology", "", "load balancer path: "+strings.Join(topologyNames(), ", ")+" (default "+lab.DefaultTopology+"; with --manifests, what the manifests say)")
	fl.StringVar(&o.shutdown, "app-shutdown", "", "how the demo API exits on SIGTERM: graceful (drain with Connection: close, then exit) or immediate (default: the scenario's own; graceful for --manifests)")
	fl.BoolVar(&o.kube, "kube", false, "run on a real Kubernetes control plane on loopback (etcd, kube-apiserver, controller-manager, scheduler built by scripts/controlplane.sh) with the node agent running the pods")
	return cmd
}

func run(cmd *cobra.Command, f *cmdutil.Factory, o *options) error {
	out, err := cmdutil.ParseOutput(o.output, cmdutil.OutputText, cmdutil.OutputJSON)
	if err != nil {
		return err
	}
	if o.list {
		return listScenarios(f.IO.Out)
	}
	scenarios, err := pickScenarios(f, o)
	if err != nil {
		return err
	}
	if scenarios, err = onPath(o, scenarios); err != nil {
		return err
	}
	if o.rollouts < 1 || o.rate <= 0 || o.timeScale <= 0 || o.timeScale > 1 {
		return cmdutil.UsageErrorf("--rollouts must be ≥ 1, --rate > 0, --time-scale in (0, 1]")
	}
	app, err := appCommand(o.app)
	if err != nil {
		return err
	}
	sinks, err := openSinks(o)
	if err != nil {
		return err
	}
	defer sinks.cleanup()

	opts := lab.Options{
		TimeScale: o.timeScale, Rollouts: o.rollouts, Rate: o.rate, App: app,
		Sink: sinks.write, Listen: o.listen,
	}
	opts.AccessLog = sinks.access
	progress := cmdutil.NewProgress(f.IO)
	defer progress.Clear()
	kubeconfig := ""
	if o.kube {
		cp, err := startControlPlane(cmd, progress)
		if err != nil {
			return err
		}
		defer cp.Stop()
		opts.Kube = &lab.KubeOptions{Config: cp.Config()}
		kubeconfig = cp.KubeconfigPath
	}
	if progress.On() {
		opts.Progress = progress.Printf
	}
	if o.serve {
		return serve(cmd, f, progress, scenarios, opts, kubeconfig)
	}
	var results []*lab.Result
	for _, s := range scenarios {
		res, err := lab.Run(cmd.Context(), s, opts)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		results = append(results, res)
	}
	progress.Clear()
	if err := sinks.close(); err != nil {
		return err
	}
	if err := writeHTML(cmd.Context(), o.html, sinks.inputs()...); err != nil {
		return err
	}
	if out == cmdutil.OutputJSON {
		return cmdutil.WriteJSON(f.IO.Out, map[string]any{"scenarios": results})
	}
	printTable(f.IO.Out, results)
	if o.html != "" {
		fmt.Fprintf(f.IO.Out, "\nHTML timeline: %s\n", o.html)
	}
	return nil
}

// serve keeps one scenario up until Ctrl-C and says where it is.
func serve(cmd *cobra.Command, f *cmdutil.Factory, progress *cmdutil.Progress, scenarios []lab.Scenario, opts lab.Options, kubeconfig string) error {
	if len(scenarios) != 1 {
		return cmdutil.UsageErrorf("--serve brings up one scenario: give --scenario NAME (or --manifests)")
	}
	err := lab.Serve(cmd.Context(), scenarios[0], opts, func(s lab.Served) {
		progress.Above(func() { printServed(f, scenarios[0].Name, s, kubeconfig) })
	})
	if err != nil {
		return fmt.Errorf("scenario %s: %w", scenarios[0].Name, err)
	}
	return nil
}

// printServed says where a served scenario is and the commands that watch
// it as they would watch EKS and an ALB. probe builds its ELBv2 client from
// the default AWS chain: against the lab any credentials do (the lab's API
// checks none), but without some the chain would go on to IMDS, so the
// export line gives dummy ones and the ARN's region.
func printServed(f *cmdutil.Factory, name string, s lab.Served, kubeconfig string) {
	w := f.IO.Out
	fmt.Fprintf(w, "scenario %s is serving (Ctrl-C to stop)\n", name)
	fmt.Fprintf(w, "  url:              %s/\n", s.URL)
	fmt.Fprintf(w, "  namespace:        %s\n", s.Namespace)
	fmt.Fprintf(w, "  deployment:       %s\n", s.Deployment)
	fmt.Fprintf(w, "  elbv2 endpoint:   %s\n", s.ELBv2Endpoint)
	fmt.Fprintf(w, "  target group arn: %s\n", s.TargetGroupARN)
	kube := ""
	if kubeconfig != "" {
		fmt.Fprintf(w, "  kubeconfig:       %s\n", kubeconfig)
		kube = fmt.Sprintf(" --kube --kubeconfig %s --namespace %s -l %s", kubeconfig, s.Namespace, s.Selector)
	}
	fmt.Fprintf(w, "\ntry:\n  export AWS_ACCESS_KEY_ID=lab AWS_SECRET_ACCESS_KEY=lab AWS_REGION=%s   # any values: the lab checks none\n", s.Region)
	fmt.Fprintf(w, "  %s probe %s/ --version-header X-Version --idle-timeout %v%s --target-group-arn %s --aws-endpoint %s --poll-interval %v --record run.ndjson\n",
		f.Name, s.URL, s.IdleTimeout/2, kube, s.TargetGroupARN, s.ELBv2Endpoint, s.Poll)
	if kubeconfig != "" {
		fmt.Fprintf(w, "  %s soak --kubeconfig %s -n %s --deployment %s --url %s/ --trigger env:VERSION --version-header X-Version --rollouts 3\n",
			f.Name, kubeconfig, s.Namespace, s.Deployment, s.URL)
	}
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler on loopback from the binaries scripts/controlplane.sh
// builds.
func startControlPlane(cmd *cobra.Command, progress *cmdutil.Progress) (*controlplane.ControlPlane, error) {
	progress.Printf("starting a Kubernetes control plane on loopback…")
	cp, err := controlplane.Start(cmd.Context(), controlplane.Options{ControllerManager: true, Scheduler: true})
	progress.Clear()
	var missing *controlplane.MissingBinaryError
	if errors.As(err, &missing) {
		return nil, cmdutil.UsageErrorf("--kube: %v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	return cp, nil
}

// onPath applies --topology and --app-shutdown to every scenario.
func onPath(o *options, scenarios []lab.Scenario) ([]lab.Scenario, error) {
	switch o.shutdown {
	case "", "graceful", "immediate":
	default:
		return nil, cmdutil.UsageErrorf("--app-shutdown %q: want graceful or immediate", o.shutdown)
	}
	var topo lab.Topology
	if o.topology != "" && o.manifests != "" {
		return nil, cmdutil.UsageErrorf("--topology and --manifests cannot be combined: the manifests' Service or Ingress is the topology")
	}
	if o.topology != "" {
		t, err := lab.LookupTopology(o.topology)
		if err != nil {
			return nil, cmdutil.UsageErrorf("--topology: %v", err)
		}
		topo = t
	}
	out := make([]lab.Scenario, len(scenarios))
	for i, s := range scenarios {
		if topo.Name != "" {
			s = s.On(topo)
		}
		// A served lab is for soak, probe and check --live, which read the
		// ALB Ingress only alb-ip creates on the control plane.
		if o.kube && o.serve && s.Topology != "" && s.Topology != lab.DefaultTopology {
			return nil, cmdutil.UsageErrorf("--kube --serve runs the %s topology only, not %s (--kube without --serve runs every topology)", lab.DefaultTopology, s.Topology)
		}
		if o.shutdown != "" {
			s.App.Shutdown = o.shutdown
		}
		out[i] = s
	}
	return out, nil
}

func topologyNames() []string {
	var names []string
	for _, t := range lab.Topologies() {
		names = append(names, t.Name)
	}
	return names
}

func listScenarios(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPOLOGY\tDEFAULT\tWHAT")
	for _, t := range lab.Topologies() {
		def := ""
		if t.Name == lab.DefaultTopology {
			def = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, def, t.Description)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SCENARIO\tDEFAULT\tWHAT")
	for _, s := range lab.Builtins() {
		def := ""
		for _, n := range lab.DefaultScenarios {
			if n == s.Name {
				def = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, def, s.Description)
	}
	return tw.Flush()
}

func pickScenarios(f *cmdutil.Factory, o *options) ([]lab.Scenario, error) {
	if o.manifests != "" {
		if len(o.scenarios) > 0 {
			return nil, cmdutil.UsageErrorf("--manifests and --scenario cannot be combined: the manifests are the scenario")
		}
		s, err := lab.FromManifests(o.manifests, f.IO.In)
		if err != nil {
			return nil, cmdutil.UsageErrorf("--manifests: %v", err)
		}
		return []lab.Scenario{s}, nil
	}
	names := o.scenarios
	if len(names) == 0 {
		names = lab.DefaultScenarios
	} else if len(names) == 1 && names[0] == "all" {
		names = lab.ScenarioNames()
	}
	s, err := lab.Lookup(names...)
	if err != nil {
		return nil, cmdutil.UsageErrorf("--scenario: %v", err)
	}
	return s, nil
}

// appCommand resolves the pods' command: the user's --app (split like a
// shell would, no shell run), or this very binary's hidden demo-api command.
func appCommand(app string) ([]string, error) {
	if app == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return []string{self, "demo-api"}, nil
	}
	args, err := shlex.Split(app)
	if err != nil || len(args) == 0 {
		return nil, cmdutil.UsageErrorf("--app %q: cannot split into a command: %v", app, err)
	}
	if strings.ContainsRune(args[0], os.PathSeparator) {
		if abs, err := filepath.Abs(args[0]); err == nil {
			args[0] = abs
		}
		if st, err := os.Stat(args[0]); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, cmdutil.UsageErrorf("--app: %s is not an executable file", args[0])
		}
	} else if _, err := lookPath(args[0]); err != nil {
		return nil, cmdutil.UsageErrorf("--app: %s not found in PATH", args[0])
	}
	return args, nil
}

func printTable(w io.Writer, results []*lab.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSETTINGS\tROLLOUTS\tREQUESTS\tFAILED\tBY CLASS\tCAUSES\tEVIDENCE AGREES\tP MEASURED")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r.Name, r.Settings, r.Rollouts, r.Requests, r.Failed(),
			orDash(cmdutil.Counts(r.Failures, timeline.FailureClasses)), orDash(cmdutil.Counts(r.Causes, nil)),
			agrees(r), measuredP(r.Evidence))
	}
	tw.Flush()
	for _, r := range results {
		if n := r.Nginx; n != nil {
			fmt.Fprintf(w, "%s through nginx: failed GET %d, POST %d; passed on to another pod after a failed try and answered, unseen by the client: GET %d, POST %d\n",
				r.Name, n.Failed["GET"], n.Failed["POST"], n.Retried["GET"], n.Retried["POST"])
		}
	}
}

// agrees is how often the attribution from evidence alone matched the
// ground truth, and how many it wrongly called certain.
func agrees(r *lab.Result) string {
	e := r.Evidence
	if e == nil || e.Agreement.Compared == 0 {
		return "-"
	}
	a := e.Agreement
	return fmt.Sprintf("%.1f%% of %d (%d wrongly certain)", 100*a.Ratio, a.Compared, a.WronglyCertain)
}

// measuredP is P from the evidence beside the configured one (real seconds).
func measuredP(e *lab.Evidence) string {
	if e == nil || e.Propagation == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fs (set %.2fs)", e.PropagationSeconds, e.ConfiguredSeconds)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeHTML builds the report from the run's own files — the timeline and
// the ALB stand-in's access log — as `rollsafe report` would.
func writeHTML(ctx context.Context, path string, inputs ...string) error {
	if path == "" {
		return nil
	}
	rep, err := report.Build(ctx, inputs, report.Options{Bin: 100 * time.Millisecond, Title: "rollsafe lab"})
	if err != nil {
		return err
	}
	return cmdutil.WriteFileAtomic("--report", path, func(w io.Writer) error { return report.HTML(w, rep) })
}
