package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

var createOptions = metav1.CreateOptions{}

// LostReason marks the event record written for a worker whose records
// have a hole.
const LostReason = "probe worker lost"

// merger owns everything a run accumulates; only its run loop touches it.
type merger struct {
	opts        *Options
	sink        timeline.Sink
	sinkErr     error
	res         Result
	workers     []*worker
	nodes       map[string]*Node
	pods        map[string]*podState
	interrupted bool
	lines       chan line
	followCtx   context.Context // the log streams: outlive Ctrl-C, so the last records arrive
	stopFollow  context.CancelFunc
}

type worker struct {
	Worker
	started   bool // one of its pods ran
	ended     bool // its last line arrived
	stopped   bool // its last line says it was stopped before its schedule ended
	bad       int  // lines that looked like records and did not decode
	cut       bool
	streamErr error
	pending   string // why its pod has not started, as the pod says
	exit      string
}

type podState struct {
	index     int
	node      string
	following bool
	streamEnd bool
	terminal  bool // Succeeded, Failed or gone from the API
}

func newMerger(o *Options, sink timeline.Sink) *merger {
	m := &merger{opts: o, sink: sink, nodes: map[string]*Node{}, pods: map[string]*podState{},
		lines: make(chan line, 1024)}
	m.followCtx, m.stopFollow = context.WithCancel(context.Background())
	m.res.Summary = probe.NewSummary(o.Rate, o.LateAfter, o.Timeout)
	for i := range o.Workers {
		m.workers = append(m.workers, &worker{Worker: Worker{Index: i, Reported: -1,
			Summary: probe.NewSummary(o.Rate/float64(o.Workers), o.LateAfter, o.Timeout)}})
	}
	return m
}

// run is the loop: pod changes, log lines, the start deadline, Ctrl-C.
func (m *merger) run(ctx context.Context, j *batchv1.Job) error {
	defer m.stopFollow()
	pods, stop, err := watchPods(m.opts.Client, j)
	if err != nil {
		return err
	}
	defer stop()
	deadline := time.NewTimer(m.opts.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := ctx.Done()
	for !m.finished() {
		select {
		case <-done:
			done = nil
			m.interrupt(j)
		case e := <-pods:
			m.onPod(e.pod, e.gone)
		case l := <-m.lines:
			m.onLine(l)
		case <-deadline.C:
			m.giveUp("its pod did not start within " + m.opts.StartTimeout.String())
		case <-tick.C:
			if m.opts.Progress != nil {
				m.opts.Progress(m.res.Summary)
			}
		}
		if m.sinkErr != nil {
			return fmt.Errorf("recording: %w", m.sinkErr)
		}
	}
	return nil
}

// interrupt deletes the Job at once: the workers get SIGTERM, stop
// sending and write the records of their requests in flight, which are
// still followed. Workers that had not started never will.
func (m *merger) interrupt(j *batchv1.Job) {
	m.interrupted = true
	fg := metav1.DeletePropagationForeground
	_ = m.opts.Client.BatchV1().Jobs(j.Namespace).Delete(context.Background(), j.Name, metav1.DeleteOptions{PropagationPolicy: &fg})
	m.giveUp("interrupted before it started")
}

// giveUp marks every worker that has not started as never started.
func (m *merger) giveUp(why string) {
	for _, w := range m.workers {
		if !w.started && w.State == "" {
			w.State, w.Reason = NeverStarted, why
			if w.pending != "" {
				w.Reason += " (" + w.pending + ")"
			}
		}
	}
}

// onPod follows a pod's log once it has started (its log exists from
// then on, and lasts as long as the pod object does).
func (m *merger) onPod(p *corev1.Pod, gone bool) {
	i := podIndex(p)
	if i < 0 || i >= len(m.workers) {
		return
	}
	w := m.workers[i]
	ps := m.pods[p.Name]
	if ps == nil {
		ps = &podState{index: i}
		m.pods[p.Name] = ps
	}
	ps.node = p.Spec.NodeName
	ps.terminal = ps.terminal || gone || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	w.pending = waitingReason(p)
	if e := exitOf(p); e != "" {
		w.exit = e
	}
	if gone || p.Status.Phase == corev1.PodPending || ps.following || w.State == NeverStarted {
		return
	}
	ps.following, w.started = true, true
	w.Pod, w.Node = p.Name, ps.node
	go follow(m.followCtx, m.opts.Client, p.Namespace, p.Name, i, m.lines)
}

func (m *merger) onLine(l line) {
	w := m.workers[l.index]
	switch {
	case l.end != nil:
		m.pods[l.pod].streamEnd = true
		w.cut = w.cut || l.end.cut
		if l.end.err != nil && w.streamErr == nil {
			w.streamErr = l.end.err
		}
	case l.msg != "":
		if strings.HasPrefix(l.msg, "not a record: ") {
			w.bad++
		}
		if m.opts.Messages != nil {
			fmt.Fprintf(m.opts.Messages, "worker %d (%s): %s\n", l.index, l.pod, l.msg)
		}
	case l.rec.Kind == timeline.KindEvent && l.rec.Reason == EndReason:
		w.ended = true
		w.Reported, _ = strconv.ParseInt(l.rec.Attrs["requests"], 10, 64)
		w.stopped = l.rec.Attrs["interrupted"] == "true"
		m.record(l.rec)
	default:
		m.add(w, m.pods[l.pod].node, l.rec)
	}
}

// add counts a record in the merged, worker and node summaries, then
// hands it to the sink.
func (m *merger) add(w *worker, node string, r *timeline.Record) {
	m.res.Summary.Add(r)
	w.Summary.Add(r)
	n := m.nodes[node]
	if n == nil {
		n = &Node{Name: node, Summary: probe.NewSummary(0, m.opts.LateAfter, m.opts.Timeout)}
		m.nodes[node] = n
	}
	if !slices.Contains(n.Workers, w.Index) {
		n.Workers = append(n.Workers, w.Index)
	}
	n.Summary.Add(r)
	m.record(r)
}

func (m *merger) record(r *timeline.Record) {
	if m.sink != nil && m.sinkErr == nil {
		m.sinkErr = m.sink(r)
	}
}

// finished: every worker never started, or every pod of it that ran has
// ended and its log has been read to the end.
func (m *merger) finished() bool {
	for _, w := range m.workers {
		if w.State == NeverStarted {
			continue
		}
		if !w.started {
			return false
		}
	}
	for _, ps := range m.pods {
		if ps.following && (!ps.streamEnd || !ps.terminal) {
			return false
		}
	}
	return true
}

// result settles each worker's state and closes the summaries.
func (m *merger) result() *Result {
	for _, w := range m.workers {
		m.settle(w)
		w.Summary.Interrupted = m.interrupted
		w.Summary.Close()
		m.res.Workers = append(m.res.Workers, w.Worker)
		if w.State == Died || w.State == NeverStarted {
			m.record(&timeline.Record{Kind: timeline.KindEvent, Time: time.Now(), Source: probe.DefaultSource,
				Object: w.Pod, Reason: LostReason, Attrs: map[string]string{
					"worker": strconv.Itoa(w.Index), "state": string(w.State), "why": w.Reason}})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.nodes)) {
		n := m.nodes[name]
		slices.Sort(n.Workers)
		n.Summary.Interrupted = m.interrupted
		n.Summary.Close()
		m.res.Nodes = append(m.res.Nodes, *n)
	}
	m.res.Summary.Interrupted = m.interrupted
	m.res.Summary.Close()
	return &m.res
}

func (m *merger) settle(w *worker) {
	if w.State == NeverStarted {
		return
	}
	var why []string
	if w.exit != "" && w.exit != "exit 0" {
		why = append(why, w.exit)
	}
	if w.cut {
		why = append(why, "its last line was cut")
	}
	if w.bad > 0 {
		why = append(why, fmt.Sprintf("%d record lines did not decode", w.bad))
	}
	if w.streamErr != nil {
		why = append(why, w.streamErr.Error())
	}
	switch {
	case !w.ended:
		why = append(why, fmt.Sprintf("its log ended without its last line, after %d records", w.Summary.Requests))
	case uint64(w.Reported) != w.Summary.Requests:
		why = append(why, fmt.Sprintf("it sent %d requests, %d records arrived", w.Reported, w.Summary.Requests))
	case w.stopped && !m.interrupted:
		// Evicted or deleted: every request it sent is recorded, but the
		// rest of its slots were never sent.
		why = append(why, "it was stopped (SIGTERM) before its schedule ended")
	}
	switch {
	case len(why) > 0:
		w.State, w.Reason = Died, strings.Join(why, "; ")
	case m.interrupted:
		w.State = Stopped
	default:
		w.State = Done
	}
}

// podEvent is a pod as the API has it, or its last state once it is gone.
type podEvent struct {
	pod  *corev1.Pod
	gone bool
}

// watchPods streams the Job's pods until stop is called.
func watchPods(cs kubernetes.Interface, j *batchv1.Job) (<-chan podEvent, func(), error) {
	sel := labels.SelectorFromSet(labels.Set{jobNameLabel: j.Name}).String()
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(j.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	inf := f.Core().V1().Pods().Informer()
	out := make(chan podEvent, 64)
	quit := make(chan struct{})
	send := func(obj any, gone bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			select {
			case out <- podEvent{pod: p, gone: gone}:
			case <-quit:
			}
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { send(obj, false) },
		UpdateFunc: func(_, obj any) { send(obj, false) },
		DeleteFunc: func(obj any) { send(obj, true) },
	})
	if err != nil {
		return nil, nil, err
	}
	f.Start(quit)
	stop := func() {
		close(quit)
		f.Shutdown()
	}
	return out, stop, nil
}

// deleteJob deletes the Job in the foreground (its pods first) and waits
// until neither it nor a pod of it is left, for at most bound.
func deleteJob(cs kubernetes.Interface, j *batchv1.Job, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	err := cs.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting probe Job %s/%s: %w", j.Namespace, j.Name, err)
	}
	sel := labels.SelectorFromSet(labels.Set{jobNameLabel: j.Name}).String()
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if _, err := cs.BatchV1().Jobs(j.Namespace).Get(ctx, j.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		pods, err := cs.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err == nil && len(pods.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("probe Job %s/%s: still there %v after deleting it", j.Namespace, j.Name, bound)
	}
	return nil
}
