package probe

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/probe/fleet"
	"github.com/rollsafe/rollsafe/timeline"
)

// DefaultImage is the image built from the Dockerfile's rollsafe target
// under the name deploy/soak uses; push it where the cluster pulls from and
// give that name to --image.
const DefaultImage = "rollsafe"

// imageBinary is where the Dockerfile's rollsafe target puts the binary.
const imageBinary = "/usr/local/bin/rollsafe"

// fleetOptions are the flags of a distributed run (--workers) and the
// hidden ones the coordinator gives each worker.
type fleetOptions struct {
	workers      int
	image        string
	command      string
	startTimeout time.Duration
	startDelay   time.Duration

	// Worker mode: set by the coordinator in the Job's command.
	workerOf    int
	workerIndex int
	epoch       string
	runID       string
}

func addFleetFlags(fl *pflag.FlagSet, o *fleetOptions) {
	fl.IntVar(&o.workers, "workers", 0, "with --kube: run the probe as an Indexed Job of this many pods, each sending --rate/N on one shared schedule, and merge their records")
	fl.StringVar(&o.image, "image", DefaultImage, "with --workers: the workers' image, built from the Dockerfile's rollsafe target (docker build --target rollsafe) and pushed where the cluster pulls from")
	fl.StringVar(&o.command, "worker-command", imageBinary, "with --workers: the rollsafe binary's path in --image (the lab's node agent runs it as a host process: give a host path there)")
	fl.DurationVar(&o.startTimeout, "start-timeout", 2*time.Minute, "with --workers: a worker whose pod has not started by then is reported as never started")
	fl.DurationVar(&o.startDelay, "start-delay", 10*time.Second, "with --workers: the shared schedule starts this long after the Job is created; a worker starting later skips the slots already due")
	fl.IntVar(&o.workerOf, "worker-of", 0, "worker mode (set by --workers): this run is one of this many workers")
	fl.IntVar(&o.workerIndex, "worker-index", 0, "worker mode: this worker's index (from 0)")
	fl.StringVar(&o.epoch, "epoch", "", "worker mode: the shared schedule's start (RFC 3339)")
	fl.StringVar(&o.runID, "run-id", "", "worker mode: the shared trace run id (8 hex digits)")
	for _, name := range []string{"worker-of", "worker-index", "epoch", "run-id"} {
		_ = fl.MarkHidden(name) // the coordinator's protocol, not the user's
	}
}

// checkFleet refuses combinations before anything is contacted.
func checkFleet(o *options) error {
	fo := &o.fleet
	switch {
	case fo.workers < 0:
		return cmdutil.UsageErrorf("--workers %d: must be ≥ 1 (or 0 for one local probe)", fo.workers)
	case fo.workers > 0 && !o.observe.kube:
		return cmdutil.UsageErrorf("--workers %d: needs --kube (the workers run as a Job in the cluster)", fo.workers)
	case fo.workers > 0 && o.record == "-":
		return cmdutil.UsageErrorf("--record -: not with --workers; give a file")
	case fo.workers > 0 && (fo.startTimeout <= 0 || fo.startDelay < 0):
		return cmdutil.UsageErrorf("--start-timeout %v, --start-delay %v: want a positive timeout and a delay ≥ 0", fo.startTimeout, fo.startDelay)
	case fo.workers > 0 && (strings.TrimSpace(fo.image) == "" || strings.TrimSpace(fo.command) == ""):
		return cmdutil.UsageErrorf("--image %q, --worker-command %q: give both", fo.image, fo.command)
	}
	return nil
}

// workerShard reads the worker-mode flags into the Config.
func workerShard(o *options) error {
	fo, c := &o.fleet, &o.cfg
	if fo.workerIndex < 0 || fo.workerIndex >= fo.workerOf {
		return cmdutil.UsageErrorf("--worker-index %d: want 0..%d", fo.workerIndex, fo.workerOf-1)
	}
	c.Shard = probe.Shard{Index: fo.workerIndex, Of: fo.workerOf}
	if fo.epoch != "" {
		t, err := time.Parse(time.RFC3339Nano, fo.epoch)
		if err != nil {
			return cmdutil.UsageErrorf("--epoch %q: want an RFC 3339 time", fo.epoch)
		}
		c.Epoch = t
	}
	if fo.runID != "" {
		id, err := strconv.ParseUint(fo.runID, 16, 32)
		if err != nil || id == 0 {
			return cmdutil.UsageErrorf("--run-id %q: want 8 hex digits, not all zero", fo.runID)
		}
		c.RunID = uint32(id)
	}
	return nil
}

// runWorker is one worker of a fleet: its records on stdout, one per
// line, then the last line saying how many it sent (see package fleet).
// It judges nothing: the coordinator judges the merged run.
func runWorker(cmd *cobra.Command, f *cmdutil.Factory, o *options) error {
	if err := workerShard(o); err != nil {
		return err
	}
	w := timeline.NewWriter(f.IO.Out)
	sum, err := probe.Run(cmd.Context(), o.cfg, w.Write)
	if sum == nil {
		return cmdutil.UsageErrorf("%v", err)
	}
	if err != nil {
		return err
	}
	if err := w.Write(fleet.EndRecord(o.fleet.workerIndex, sum)); err != nil {
		return err
	}
	return w.Close()
}

// passed are the flags a worker gets as the user gave them.
var passed = []string{"rate", "connections", "new-conn", "duration", "requests", "timeout", "idle-timeout",
	"method", "header", "body", "insecure", "http", "replica-header", "version-header", "version-regex",
	"scenario", "late-after"}

// workerCommand is the argv of every worker: the probe flags the user set,
// then the shard. Kubernetes expands $(VAR) in a command, so every $ the
// user wrote is doubled ($$ is a literal $).
func workerCommand(fl *pflag.FlagSet, o *options, epoch time.Time, run string) ([]string, error) {
	argv := []string{o.fleet.command, "probe", esc(o.cfg.URL)}
	for _, name := range passed {
		fg := fl.Lookup(name)
		if !fg.Changed {
			continue
		}
		if sv, ok := fg.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				argv = append(argv, "--"+name+"="+esc(v))
			}
			continue
		}
		argv = append(argv, "--"+name+"="+esc(fg.Value.String()))
	}
	if o.bodyFile != "" {
		if strings.ContainsRune(string(o.cfg.Body), 0) {
			return nil, cmdutil.UsageErrorf("--body-file %s: a NUL byte cannot be passed to the workers' command line", o.bodyFile)
		}
		argv = append(argv, "--body="+esc(string(o.cfg.Body)))
	}
	return append(argv, "--worker-of="+strconv.Itoa(o.fleet.workers), "--worker-index=$("+fleet.IndexVar+")",
		"--epoch="+epoch.UTC().Format(time.RFC3339Nano), "--run-id="+run), nil
}

func esc(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// newRunID is a random nonzero 8-hex trace run id shared by the workers.
func newRunID() string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		if id := binary.BigEndian.Uint32(b[:]); id != 0 {
			return fmt.Sprintf("%08x", id)
		}
	}
}

// fleetOutput is the JSON of a distributed run: the merged summary's
// fields, then the Job and a row per worker and per node.
type fleetOutput struct {
	*probe.Summary
	Job     string         `json:"job"`
	Workers []fleet.Worker `json:"workers"`
	Nodes   []fleet.Node   `json:"nodes"`
}

// lostError is the one line for workers whose records have a hole: the
// merged run is incomplete, so it neither passes nor fails the gate
// (exit 3, like a record file that failed mid-run).
func lostError(lost []fleet.Worker, of int) error {
	parts := make([]string, len(lost))
	for i, w := range lost {
		where := ""
		if w.Pod != "" {
			where = fmt.Sprintf(" (pod %s on node %s)", w.Pod, w.Node)
		}
		parts[i] = fmt.Sprintf("worker %d%s %s: %s", w.Index, where, w.State, w.Reason)
	}
	return fmt.Errorf("%d of %d workers lost, the recording has a hole: %s", len(lost), of, strings.Join(parts, "; "))
}

// runFleet runs the workers as a Job in the --kube cluster and merges
// their records into sink. A nil Result means nothing was sent.
func runFleet(cmd *cobra.Command, f *cmdutil.Factory, o *options, sink timeline.Sink) (*fleet.Result, error) {
	cs, ns, err := o.observe.flags.Client()
	if err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	run := newRunID()
	epoch := time.Now().Add(o.fleet.startDelay)
	argv, err := workerCommand(cmd.Flags(), o, epoch, run)
	if err != nil {
		return nil, err
	}
	timeout := o.cfg.Timeout
	return fleet.Run(cmd.Context(), fleet.Options{
		Client: cs, Namespace: ns, Workers: o.fleet.workers, Image: o.fleet.image, Command: argv,
		StartTimeout: o.fleet.startDelay + o.fleet.startTimeout,
		GracePeriod:  int64((timeout + 5*time.Second + time.Second - 1) / time.Second),
		Rate:         o.cfg.Rate, LateAfter: o.cfg.LateAfter, Timeout: timeout,
		Messages: f.IO.ErrOut, Progress: o.cfg.Progress,
	}, run, sink)
}
