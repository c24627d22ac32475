// Package fleet runs probe workers as a Kubernetes Indexed Job and merges
// what they record: the library behind `rollsafe probe --workers N --kube`.
//
// Each worker is `rollsafe probe` in worker mode, one shard of one
// schedule (probe.Shard): the workers share the schedule's epoch and the
// trace run id, and each sends every N-th slot, so the merged records are
// the single run's schedule, each slot (Seq) and trace id once. Records
// come back through the Kubernetes API by following each pod's log (see
// the worker protocol in follow.go); nothing else is needed in the
// cluster (no volume, no bucket).
//
// A worker whose pod never starts, or that dies before its last line, is
// reported as such (Worker.State): the recording has a hole there, and
// Result.Lost says so. The Job and its pods are deleted when Run returns,
// however it ends; Run waits until they are gone.
package fleet

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options say what to run where.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	Workers   int
	// Image holds the rollsafe binary (the Dockerfile's rollsafe target).
	Image string
	// Command is each worker's argv, run as the container's command;
	// Kubernetes expands $(JOB_COMPLETION_INDEX) (IndexVar) in it to the
	// worker's index, and $$ to $.
	Command      []string
	Labels       map[string]string // added to the Job and its pods
	NodeSelector map[string]string
	// StartTimeout bounds how long a worker's pod may take to start
	// (scheduling, image pull); past it the worker is NeverStarted.
	StartTimeout time.Duration
	// GracePeriod is the pods' terminationGracePeriodSeconds: on Ctrl-C a
	// worker waits for its requests in flight (up to the probe's timeout)
	// and writes their records before it exits.
	GracePeriod int64
	// Rate, LateAfter and Timeout are the probe's, for the summaries.
	Rate      float64
	LateAfter time.Duration
	Timeout   time.Duration
	// Messages receives the workers' lines that are not records (their
	// stderr), prefixed with the worker; nil discards them.
	Messages io.Writer
	// Progress, if set, gets the merged summary about once a second.
	Progress func(*probe.Summary)
}

// State is how a worker ended.
type State string

const (
	Done         State = "done"          // it sent its share and every record arrived
	Died         State = "died"          // it started, then ended before its last record
	NeverStarted State = "never started" // its pod never ran
	Stopped      State = "stopped"       // Ctrl-C: it stopped early, every record arrived
)

// Worker is one index of the Job.
type Worker struct {
	Index int    `json:"index"`
	Pod   string `json:"pod,omitempty"`
	Node  string `json:"node,omitempty"`
	State State  `json:"state"`
	// Reason says why a worker is not Done (exit code, cut log, …).
	Reason string `json:"reason,omitempty"`
	// Reported is the request count of the worker's last line (-1: none arrived).
	Reported int64          `json:"reported"`
	Summary  *probe.Summary `json:"summary"` // of the records that arrived from it
}

// Node is the workers on one node and their records together.
type Node struct {
	Name    string         `json:"name"`
	Workers []int          `json:"workers"`
	Summary *probe.Summary `json:"summary"`
}

// Result is a fleet run: the merged summary, and one row per worker and
// per node.
type Result struct {
	Job     string         `json:"job"`
	Summary *probe.Summary `json:"summary"`
	Workers []Worker       `json:"workers"`
	Nodes   []Node         `json:"nodes"`
}

// Lost returns the workers whose records have a hole: they died or never
// started.
func (r *Result) Lost() []Worker {
	var lost []Worker
	for _, w := range r.Workers {
		if w.State == Died || w.State == NeverStarted {
			lost = append(lost, w)
		}
	}
	return lost
}

func (o *Options) check() error {
	switch {
	case o.Client == nil:
		return fmt.Errorf("fleet: no Kubernetes client")
	case o.Workers < 1:
		return fmt.Errorf("fleet: Workers %d: want at least 1", o.Workers)
	case o.Image == "" || len(o.Command) == 0:
		return fmt.Errorf("fleet: no image or command for the workers")
	case o.StartTimeout <= 0:
		return fmt.Errorf("fleet: StartTimeout %v: must be positive", o.StartTimeout)
	}
	return nil
}

// Run creates the Job, follows every worker's log into sink (records in
// arrival order, from one goroutine) and the summaries, and returns when
// every worker has ended or been given up. When ctx is cancelled the Job
// is deleted at once; the workers stop sending, and the records of their
// requests in flight still arrive. An error means the Job could not be
// created or deleted, or sink failed; a lost worker is not an error but a
// row of the Result (see Lost).
func Run(ctx context.Context, opts Options, run string, sink timeline.Sink) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	m := newMerger(&opts, sink)
	j, err := opts.Client.BatchV1().Jobs(opts.Namespace).Create(ctx, job(&opts, run), createOptions)
	if err != nil {
		return nil, fmt.Errorf("creating the probe Job in namespace %s: %w", opts.Namespace, err)
	}
	m.res.Job = j.Name
	runErr := m.run(ctx, j)
	if err := deleteJob(opts.Client, j, time.Duration(opts.GracePeriod)*time.Second+time.Minute); err != nil && runErr == nil {
		runErr = err
	}
	return m.result(), runErr
}
