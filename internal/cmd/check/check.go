// Package check is the `rollsafe check` command: flags in, check.Check,
// findings out.
package check

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// Options are the command's flags.
type Options struct {
	Paths     []string
	Output    string
	FailOn    string
	Recommend bool
	Live      bool
	Kube      *cmdutil.KubeFlags
	Check     workload.Options
}

// NewCmd builds `rollsafe check`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Check: workload.DefaultOptions()}
	cmd := &cobra.Command{
		Use:   "check PATH...",
		Short: "Judge a workload's zero-downtime chain from its manifests",
		Long: `check reads Kubernetes manifests (files, directories, - for stdin from helm
template or kustomize build) or, with --live, the cluster, joins each
Deployment/StatefulSet with its Services, ALB Ingresses, TargetGroupBindings,
PodDisruptionBudgets and Namespace, and checks the whole chain: readiness
gates, probes, rollout strategy, preStop, grace period, deregistration delay
(a Classic ELB's connection draining), idle timeouts, health checks, the
kube-proxy hop of instance targets, and keys a manifest gives twice. Each
finding names the numbers and the fix.

A directory holding a kustomization (kustomization.yaml) is rendered as
kubectl kustomize does and its output judged; in a walked tree, the files a
kustomization uses (bases, patches) are not read again on their own. YAML
that is not a Kubernetes object (CI pipelines, Chart.yaml) is skipped with a
note on stderr. An unusable document does not hide the others: their
findings are printed, the bad one gets its file:line error.

Exit codes: 0 clean, 1 a finding at or above --fail-on, 2 unusable input or
nothing to judge (no Deployment or StatefulSet, empty stdin, a directory
with no Kubernetes object).`,
		Example: `  rollsafe check deploy/
  helm template my-chart | rollsafe check -
  rollsafe check --live --namespace shop --recommend
  rollsafe check -o sarif deploy/ > rollsafe.sarif`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Paths = args
			return run(cmd, f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "text", "output format: text, json or sarif")
	fl.StringVar(&o.FailOn, "fail-on", "error", "exit 1 when a finding is at or above this severity: info, warning or error")
	fl.BoolVar(&o.Recommend, "recommend", false, "print the minimal safe settings per workload and the rollout time they cost")
	fl.DurationVar(&o.Check.Propagation, "propagation", defaults.Propagation, "propagation P: how long load balancer nodes may still route to a deregistered target; when not given, "+defaults.NLBPropagation.String()+" for NLB ip targets")
	fl.DurationVar(&o.Check.ControllerLag, "controller-lag", defaults.ControllerLag, "time from pod Terminating to the controller's deregistration call")
	fl.DurationVar(&o.Check.MaxRequestDuration, "max-request-duration", defaults.MaxRequestDuration, "longest request the app serves (annotation "+workload.AnnotationMaxRequestDuration+" overrides)")
	fl.DurationVar(&o.Check.AppIdleTimeout, "app-idle-timeout", 0, "the app's keep-alive idle timeout; 0 = unknown (annotation "+workload.AnnotationAppIdleTimeout+" overrides)")
	fl.DurationVar(&o.Check.ShutdownTime, "shutdown-time", 0, "what the app needs after SIGTERM beyond in-flight requests (annotation "+workload.AnnotationShutdownTime+" overrides)")
	fl.BoolVar(&o.Live, "live", false, "read the objects from the cluster instead of files (--kubeconfig, --context, -n … choose which)")
	o.Kube = cmdutil.AddKubeFlags(fl, "namespace to read with --live (default: the context's); namespace of objects that name none (default: default)")
	return cmd
}

func run(cmd *cobra.Command, f *cmdutil.Factory, o *Options) error {
	out, err := cmdutil.ParseOutput(o.Output, cmdutil.OutputText, cmdutil.OutputJSON, cmdutil.OutputSARIF)
	if err != nil {
		return err
	}
	failOn, err := check.ParseSeverity(o.FailOn)
	if err != nil {
		return cmdutil.UsageErrorf("--fail-on: %v", err)
	}
	for name, d := range map[string]time.Duration{"--propagation": o.Check.Propagation, "--controller-lag": o.Check.ControllerLag,
		"--max-request-duration": o.Check.MaxRequestDuration, "--app-idle-timeout": o.Check.AppIdleTimeout, "--shutdown-time": o.Check.ShutdownTime} {
		if d < 0 {
			return cmdutil.UsageErrorf("%s %s: must not be negative", name, d)
		}
	}
	objs, loadErr, err := load(cmd, f, o)
	if err != nil {
		return err
	}
	res, err := check.Check(objs, o.Check)
	loadErr = errors.Join(loadErr, err) // a workload with unusable values: the others are still judged
	if len(res.Workloads) == 0 && loadErr == nil {
		where := "namespace " + o.Check.DefaultNamespace + " of the cluster"
		if !o.Live {
			where = strings.Join(o.Paths, " ")
		}
		fmt.Fprintf(f.IO.ErrOut, "%s: %s: nothing to judge: %d objects read, none a Deployment or StatefulSet\n", cmd.CommandPath(), where, res.Objects)
		return cmdutil.ErrBadInput
	}
	if o.Recommend {
		for _, w := range res.Workloads {
			res.Recommendations = append(res.Recommendations, check.Recommend(w, o.Check))
		}
	}
	switch out {
	case cmdutil.OutputJSON:
		err = check.RenderJSON(f.IO.Out, res)
	case cmdutil.OutputSARIF:
		err = check.RenderSARIF(f.IO.Out, res, f.Version)
	default:
		err = check.RenderText(f.IO.Out, res, check.TextOptions{Color: colorable(f.IO.Out)})
	}
	if err != nil {
		return err
	}
	if loadErr != nil {
		return inputErrors(f, cmd, loadErr)
	}
	if check.Failed(res.Findings, failOn) {
		return cmdutil.ErrSilent
	}
	return nil
}

// load reads the objects to judge: from the cluster with --live, else from
// the paths. loadErr is unusable input beside usable objects: the good
// documents are still judged, and the exit is 2.
func load(cmd *cobra.Command, f *cmdutil.Factory, o *Options) (objs []*manifest.Object, loadErr, err error) {
	switch {
	case o.Live && len(o.Paths) > 0:
		return nil, nil, cmdutil.UsageErrorf("--live reads the cluster: give no PATH")
	case o.Live:
		cfg, ns, err := o.Kube.Config()
		if err != nil {
			return nil, nil, fmt.Errorf("--live: %w", err)
		}
		o.Check.DefaultNamespace = ns
		objs, err = manifest.LoadLiveConfig(cmd.Context(), cfg, ns)
		if err != nil {
			return nil, nil, fmt.Errorf("--live: %w", err)
		}
		return objs, nil, nil
	case len(o.Paths) == 0:
		return nil, nil, cmdutil.UsageErrorf("give at least one PATH (a file, a directory, or - for stdin), or --live")
	}
	if given := o.Kube.Given(); len(given) > 0 {
		return nil, nil, cmdutil.UsageErrorf("%s: needs --live (with files, only -n applies)", strings.Join(given, ", "))
	}
	if ns := o.Kube.Namespace(); ns != "" {
		o.Check.DefaultNamespace = ns
	}
	in, err := manifest.Read(o.Paths, f.IO.In)
	for _, n := range in.Notes {
		fmt.Fprintf(f.IO.ErrOut, "%s: note: %s\n", cmd.CommandPath(), n)
	}
	if err != nil && len(in.Objects) == 0 {
		return nil, nil, inputErrors(f, cmd, err)
	}
	return in.Objects, err, nil
}

// inputErrors prints one line per unusable input and exits 2.
func inputErrors(f *cmdutil.Factory, cmd *cobra.Command, err error) error {
	for _, e := range manifest.Errors(err) {
		fmt.Fprintf(f.IO.ErrOut, "%s: %v\n", cmd.CommandPath(), e)
	}
	return cmdutil.ErrBadInput
}

// colorable says whether w is a terminal that wants colour (NO_COLOR unset).
// cmdutil.IOStreams only knows whether ErrOut is a terminal; findings go to Out.
func colorable(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}
