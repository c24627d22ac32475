package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rollsafe/rollsafe/timeline"
)

// Source is the timeline.Record Source of every record this package writes.
const Source = "lab"

const (
	hostIP   = "127.0.0.1"    // the lab's one "node"
	nodeName = "rollsafe-lab" // spec.nodeName of every lab pod
)

// ErrGone is returned by SetCondition on a pod whose termination finished.
var ErrGone = errors.New("pod is gone")

// Options say what to run and where to report.
type Options struct {
	// Pod to run. Exactly one container; it is not modified.
	Pod *corev1.Pod
	// IP is the pod's own loopback address (127.0.x.y).
	IP string
	// Port is where the app listens on IP: exported as PORT, and where probes
	// and hooks aimed at the container's first declared port go.
	Port int
	// Command, when set, replaces the container's command and args (the
	// lab's --app).
	Command []string
	// Scale shrinks every duration (see TimeScale).
	Scale TimeScale
	// Sink gets one Record per change (optional), in order, from one
	// goroutine of the pod's own: a sink shared by several pods must be
	// safe for concurrent use. After its first error the pod sends it
	// nothing more and Err returns that error; the pod itself runs on.
	Sink timeline.Sink
	// OnStatus gets a snapshot of the pod after each change, with what
	// changed (optional). Calls for one pod come in order from one goroutine,
	// never under the pod's lock: it may call the pod's methods.
	OnStatus func(pod *corev1.Pod, change State)
	// Stdout and Stderr receive the child's output (nil discards it). They
	// must be safe for concurrent writes if shared.
	Stdout, Stderr io.Writer
	// Scenario is copied into every Record.
	Scenario string
}

// Pod is one running pod. Its methods are safe for concurrent use.
type Pod struct {
	opts      Options
	rec       *timeline.Latch // in front of opts.Sink
	container *corev1.Container
	env       map[string]string
	argv      []string
	grace     time.Duration

	mu              sync.Mutex
	pod             *corev1.Pod // Status is kept current under mu
	containersReady bool
	cur             *containerRun
	gone            bool
	queue           []event
	wake            chan struct{}

	deleteOnce, killOnce sync.Once
	deleteCh, killCh     chan struct{}
	killReason           string
	runDone              chan struct{} // the lifecycle loop ended
	done                 chan struct{} // ... and every event was delivered
}

type event struct {
	rec   *timeline.Record
	pod   *corev1.Pod
	state State
}

// containerRun is one start of the container's process.
type containerRun struct {
	cmd      *exec.Cmd
	pid      int
	started  time.Time
	exited   chan struct{} // closed when the process has been reaped
	reported chan struct{} // closed after its Exited event was queued
	code     int
}

// Start starts the pod's process and its readiness prober, and returns once
// the process is running. A command that cannot start (missing binary) is an
// error and leaves nothing behind. When ctx ends the pod's process group is
// killed at once (no grace: the lab is stopping).
func Start(ctx context.Context, opts Options) (*Pod, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	k8s := opts.Pod.DeepCopy()
	p := &Pod{
		opts:      opts,
		rec:       timeline.NewLatch(opts.Sink),
		pod:       k8s,
		container: &k8s.Spec.Containers[0],
		grace:     opts.Scale.Seconds(orDefault(k8s.Spec.TerminationGracePeriodSeconds, defaultGraceSeconds)),
		wake:      make(chan struct{}, 1),
		deleteCh:  make(chan struct{}),
		killCh:    make(chan struct{}),
		runDone:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	var warnings []string
	p.env, warnings = environment(k8s, p.container, opts.IP, opts.Port)
	p.argv = commandLine(p.container, opts.Command, p.env)
	if len(p.argv) == 0 {
		return nil, fmt.Errorf("pod %s: container %s has no command (the lab runs host processes, not images: give a command)", k8s.Name, p.container.Name)
	}

	pending := time.Now()
	p.initStatus(pending)
	run, err := p.startProcess()
	if err != nil {
		return nil, fmt.Errorf("pod %s: start %q: %w", k8s.Name, p.argv[0], err)
	}

	p.mu.Lock()
	p.emitAtLocked(pending, StatePending, "", nil)
	for _, w := range warnings {
		p.emitAtLocked(pending, StateWarning, w, nil)
	}
	p.runningLocked(run)
	p.mu.Unlock()

	go p.dispatch()
	go p.lifecycle(run)
	go func() {
		select {
		case <-ctx.Done():
			p.kill("context cancelled")
		case <-p.runDone:
		}
	}()
	return p, nil
}

func checkOptions(o *Options) error {
	switch {
	case o.Pod == nil:
		return errors.New("kubelet: no pod")
	case len(o.Pod.Spec.Containers) != 1:
		return fmt.Errorf("pod %s: has %d containers; the lab runs exactly one per pod", o.Pod.Name, len(o.Pod.Spec.Containers))
	case net.ParseIP(o.IP) == nil:
		return fmt.Errorf("pod %s: bad pod IP %q", o.Pod.Name, o.IP)
	case o.Port <= 0 || o.Port > 65535:
		return fmt.Errorf("pod %s: bad port %d", o.Pod.Name, o.Port)
	}
	if err := validate(o.Pod); err != nil {
		return fmt.Errorf("pod %s: %w", o.Pod.Name, err)
	}
	return nil
}

// Name is the pod's name.
func (p *Pod) Name() string { return p.pod.Name }

// IP is the pod's address.
func (p *Pod) IP() string { return p.opts.IP }

// Err is the sink's first error: the pod's records since are missing.
func (p *Pod) Err() error { return p.rec.Err() }

// Done is closed when the pod is gone (terminated after Delete, or killed
// after Close or context end) and every change has been reported.
func (p *Pod) Done() <-chan struct{} { return p.done }

// Delete starts graceful termination (preStop, SIGTERM, grace, SIGKILL) and
// returns at once. Like the API server setting deletionTimestamp, the
// Terminating change is recorded before Delete returns, so whoever deletes
// a pod and then creates another sees them in that order. Calling it again
// does nothing.
func (p *Pod) Delete() {
	p.deleteOnce.Do(func() {
		p.mu.Lock()
		if !p.gone {
			p.deletionStartedLocked(time.Now())
		}
		p.mu.Unlock()
		close(p.deleteCh)
	})
}

// Close kills the pod's process group at once, without grace, and waits
// until the pod is gone.
func (p *Pod) Close() {
	p.kill("closed")
	<-p.done
}

func (p *Pod) kill(reason string) {
	p.killOnce.Do(func() {
		p.mu.Lock()
		p.killReason = reason
		p.mu.Unlock()
		close(p.killCh)
	})
}

// Status returns a snapshot of the pod, Status current.
func (p *Pod) Status() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod.DeepCopy()
}

// Pid is the main process's pid, or 0 when none runs.
func (p *Pod) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// SetCondition sets a pod condition from outside, as a readiness-gate
// controller does through the API, and re-evaluates Ready. Conditions the
// kubelet owns cannot be set.
func (p *Pod) SetCondition(t corev1.PodConditionType, s corev1.ConditionStatus) error {
	switch t {
	case corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled, corev1.PodInitialized:
		return fmt.Errorf("pod %s: condition %s is owned by the kubelet", p.pod.Name, t)
	}
	if s != corev1.ConditionTrue && s != corev1.ConditionFalse && s != corev1.ConditionUnknown {
		return fmt.Errorf("pod %s: bad condition status %q", p.pod.Name, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return fmt.Errorf("pod %s: %w", p.pod.Name, ErrGone)
	}
	now := time.Now()
	if p.setConditionLocked(t, s, "", now) {
		p.emitAtLocked(now, StateCondition, "", map[string]string{"condition": string(t), "status": string(s)})
		p.updateReadyLocked(now)
	}
	return nil
}

// --- process ---

func (p *Pod) startProcess() (*containerRun, error) {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = envList(p.env)
	closeAfter, err := attachOutput(cmd, p.opts.Stdout, p.opts.Stderr)
	if err != nil {
		return nil, err
	}
	err = start(cmd)
	closeAfter()
	if err != nil {
		return nil, err
	}
	run := &containerRun{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(),
		exited: make(chan struct{}), reported: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		// The main process is gone: like the end of a container's PID
		// namespace, nothing it forked survives it.
		endGroup(run.pid)
		run.code = exitCode(cmd.ProcessState)
		close(run.exited)
	}()
	return run, nil
}

// attachOutput hands the child real files so that cmd.Wait returns when the
// process exits, not when the last grandchild closes a pipe; non-file
// writers get a pipe we copy from ourselves. closeAfter closes our copies of
// the write ends once the child has them.
func attachOutput(cmd *exec.Cmd, stdout, stderr io.Writer) (closeAfter func(), err error) {
	var closers []*os.File
	closeAfter = func() {
		for _, f := range closers {
			f.Close()
		}
	}
	file := func(w io.Writer) (*os.File, error) {
		if w == nil {
			return nil, nil
		}
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		r, wf, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		go func() { _, _ = io.Copy(w, r); r.Close() }()
		closers = append(closers, wf)
		return wf, nil
	}
	if cmd.Stdout, err = file(stdout); err != nil {
		closeAfter()
		return nil, err
	}
	if cmd.Stderr, err = file(stderr); err != nil {
		closeAfter()
		return nil, err
	}
	// An untyped nil *os.File in an io.Writer field is not nil: undo that.
	if stdout == nil {
		cmd.Stdout = nil
	}
	if stderr == nil {
		cmd.Stderr = nil
	}
	return closeAfter, nil
}

// lifecycle drives the pod from its first start to gone.
func (p *Pod) lifecycle(run *containerRun) {
	defer close(p.runDone)
	backoff := p.opts.Scale.Of(backoffInitial)
	for {
		go p.watch(run)
		select {
		case <-run.exited:
			<-run.reported
		case <-p.deleteCh:
			p.terminate(run)
			return
		case <-p.killCh:
			p.killNow(run)
			p.deleted()
			return
		}
		// The process exited on its own.
		if !p.restarts(run.code) {
			p.endPhase(run.code)
			select {
			case <-p.deleteCh:
			case <-p.killCh:
			}
			p.deleted()
			return
		}
		if time.Since(run.started) >= p.opts.Scale.Of(backoffReset) {
			backoff = p.opts.Scale.Of(backoffInitial)
		}
		var next *containerRun
		for next == nil {
			p.mu.Lock()
			p.emitLocked(StateBackOff, "CrashLoopBackOff", map[string]string{"restart_in": backoff.String()})
			p.mu.Unlock()
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-p.deleteCh:
				t.Stop()
				p.deleted()
				return
			case <-p.killCh:
				t.Stop()
				p.deleted()
				return
			}
			backoff = min(2*backoff, p.opts.Scale.Of(backoffMax))
			var err error
			if next, err = p.startProcess(); err != nil {
				p.mu.Lock()
				p.emitLocked(StateExited, "StartError: "+err.Error(), map[string]string{"exit_code": "128"})
				p.mu.Unlock()
			}
		}
		run = next
		p.mu.Lock()
		p.pod.Status.ContainerStatuses[0].RestartCount++
		p.runningLocked(run)
		p.mu.Unlock()
	}
}

// restarts applies spec.restartPolicy (default Always) to an exit.
func (p *Pod) restarts(code int) bool {
	switch p.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// watch probes readiness while run's process lives and reports its exit.
func (p *Pod) watch(run *containerRun) {
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() { defer close(probed); p.probe(ctx, run) }()
	<-run.exited
	at := time.Now()
	cancel()
	<-probed
	p.mu.Lock()
	p.exitedLocked(run, at)
	p.mu.Unlock()
	close(run.reported)
}

// terminate is graceful deletion: preStop, SIGTERM, grace, SIGKILL.
func (p *Pod) terminate(run *containerRun) {
	p.mu.Lock()
	deadline := p.pod.DeletionTimestamp.Add(p.grace) // the grace period counts from the deletion
	p.mu.Unlock()

	if h := p.preStop(); h != nil && !closed(run.exited) {
		p.mu.Lock()
		kind, runHook := p.hook(h)
		p.emitLocked(StatePreStop, kind, nil)
		p.mu.Unlock()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		errc := make(chan error, 1)
		go func() { errc <- runHook(ctx) }()
		var err error
		select {
		case err = <-errc:
		case <-p.killCh:
			cancel()
			<-errc
			p.killNow(run)
			p.deleted()
			return
		}
		cancel()
		reason := "completed"
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			reason = "grace period ended during preStop"
		case err != nil:
			reason = "failed: " + err.Error() // the kubelet logs it and goes on
		}
		p.mu.Lock()
		p.emitLocked(StatePreStopDone, reason, nil)
		p.mu.Unlock()
	}

	if !closed(run.exited) {
		window := time.Until(deadline)
		extended := false
		if minWindow := p.opts.Scale.Of(minStopWindow); window < minWindow {
			window, extended = minWindow, true
		}
		p.mu.Lock()
		attrs := map[string]string{"stop_window": window.String()}
		if extended {
			attrs["extended"] = "true"
		}
		p.emitLocked(StateSIGTERM, "", attrs)
		p.mu.Unlock()
		_ = syscall.Kill(run.pid, syscall.SIGTERM)
		t := time.NewTimer(window)
		select {
		case <-run.exited:
		case <-t.C:
			p.sigkill(run, "grace period exceeded")
		case <-p.killCh:
			p.killNow(run)
		}
		t.Stop()
	}
	<-run.exited
	<-run.reported
	p.deleted()
}

func (p *Pod) preStop() *corev1.LifecycleHandler {
	if lc := p.container.Lifecycle; lc != nil {
		return lc.PreStop
	}
	return nil
}

// killNow is Close or context end: SIGKILL the group now.
func (p *Pod) killNow(run *containerRun) {
	p.mu.Lock()
	reason := p.killReason
	p.mu.Unlock()
	if !closed(run.exited) {
		p.sigkill(run, reason)
	}
	<-run.exited
	<-run.reported
}

func (p *Pod) sigkill(run *containerRun, reason string) {
	p.mu.Lock()
	p.emitLocked(StateKilled, reason, nil)
	p.mu.Unlock()
	_ = killGroup(run.pid)
	<-run.exited
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// --- status ---

func (p *Pod) initStatus(now time.Time) {
	t := metav1.NewTime(now)
	st := &p.pod.Status
	st.Phase = corev1.PodPending
	st.HostIP, st.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	st.PodIP, st.PodIPs = p.opts.IP, []corev1.PodIP{{IP: p.opts.IP}}
	st.StartTime = &t
	p.pod.Spec.NodeName = nodeName
	st.Conditions = nil
	p.setConditionLocked(corev1.PodScheduled, corev1.ConditionTrue, "", now)
	p.setConditionLocked(corev1.PodInitialized, corev1.ConditionTrue, "", now)
	p.setConditionLocked(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", now)
	p.setConditionLocked(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", now)
	st.ContainerStatuses = []corev1.ContainerStatus{{
		Name:  p.container.Name,
		Image: p.container.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
	}}
}

func (p *Pod) runningLocked(run *containerRun) {
	p.cur = run
	p.pod.Status.Phase = corev1.PodRunning
	cs := &p.pod.Status.ContainerStatuses[0]
	cs.ContainerID = "rollsafe://" + strconv.Itoa(run.pid)
	cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(run.started)}}
	started := true
	cs.Started = &started
	p.emitAtLocked(run.started, StateRunning, "", map[string]string{"pid": strconv.Itoa(run.pid)})
}

func (p *Pod) exitedLocked(run *containerRun, at time.Time) {
	cs := &p.pod.Status.ContainerStatuses[0]
	reason := "Completed"
	if run.code != 0 {
		reason = "Error"
	}
	term := &corev1.ContainerStateTerminated{
		ExitCode: int32(run.code), Reason: reason, ContainerID: cs.ContainerID,
		StartedAt: metav1.NewTime(run.started), FinishedAt: metav1.NewTime(at),
	}
	if run.code > 128 {
		term.Signal = int32(run.code - 128)
	}
	cs.State = corev1.ContainerState{Terminated: term}
	cs.LastTerminationState = corev1.ContainerState{Terminated: term}
	started := false
	cs.Started = &started
	p.emitAtLocked(at, StateExited, reason, map[string]string{"exit_code": strconv.Itoa(run.code)})
	p.setContainersReadyLocked(run, false, at)
	p.cur = nil
}

// setContainersReadyLocked records a readiness result for run; results for a
// process that is no longer current are dropped.
func (p *Pod) setContainersReadyLocked(run *containerRun, ready bool, now time.Time) {
	if p.cur != run || p.containersReady == ready {
		return
	}
	p.containersReady = ready
	p.pod.Status.ContainerStatuses[0].Ready = ready
	status, state, reason := corev1.ConditionFalse, StateContainersNotReady, "ContainersNotReady"
	if ready {
		status, state, reason = corev1.ConditionTrue, StateContainersReady, ""
	}
	p.setConditionLocked(corev1.ContainersReady, status, reason, now)
	p.emitAtLocked(now, state, reason, nil)
	p.updateReadyLocked(now)
}

// updateReadyLocked: Ready = ContainersReady AND every readiness gate True.
func (p *Pod) updateReadyLocked(now time.Time) {
	ready, reason := p.containersReady, "ContainersNotReady"
	if ready {
		for _, g := range p.pod.Spec.ReadinessGates {
			if c := p.conditionLocked(g.ConditionType); c == nil || c.Status != corev1.ConditionTrue {
				ready, reason = false, "ReadinessGatesNotReady"
				break
			}
		}
	}
	status, state := corev1.ConditionFalse, StateNotReady
	if ready {
		status, state, reason = corev1.ConditionTrue, StateReady, ""
	}
	if p.setConditionLocked(corev1.PodReady, status, reason, now) {
		p.emitAtLocked(now, state, reason, nil)
	}
}

func (p *Pod) conditionLocked(t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.pod.Status.Conditions {
		if p.pod.Status.Conditions[i].Type == t {
			return &p.pod.Status.Conditions[i]
		}
	}
	return nil
}

// setConditionLocked upserts a condition and says whether its status changed.
func (p *Pod) setConditionLocked(t corev1.PodConditionType, s corev1.ConditionStatus, reason string, now time.Time) bool {
	c := p.conditionLocked(t)
	if c == nil {
		p.pod.Status.Conditions = append(p.pod.Status.Conditions, corev1.PodCondition{Type: t})
		c = &p.pod.Status.Conditions[len(p.pod.Status.Conditions)-1]
	} else if c.Status == s {
		c.Reason = reason // why it is still False may change
		return false
	}
	c.Status, c.Reason, c.LastTransitionTime = s, reason, metav1.NewTime(now)
	return true
}

func (p *Pod) endPhase(code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if code == 0 {
		p.pod.Status.Phase = corev1.PodSucceeded
		p.emitLocked(StateSucceeded, "", nil)
	} else {
		p.pod.Status.Phase = corev1.PodFailed
		p.emitLocked(StateFailed, "", map[string]string{"exit_code": strconv.Itoa(code)})
	}
}

func (p *Pod) deletionStartedLocked(at time.Time) {
	t := metav1.NewTime(at)
	p.pod.DeletionTimestamp = &t
	secs := orDefault(p.pod.Spec.TerminationGracePeriodSeconds, defaultGraceSeconds)
	p.pod.DeletionGracePeriodSeconds = &secs
	p.emitAtLocked(at, StateTerminating, "deleted", map[string]string{
		"deletion_time": at.UTC().Format(time.RFC3339Nano),
		"grace":         p.grace.String(),
	})
}

// deleted: every container has exited; the pod object goes away. The
// kubelet gives a deleted pod a terminal phase.
func (p *Pod) deleted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pod.Status.Phase != corev1.PodSucceeded && p.pod.Status.Phase != corev1.PodFailed {
		p.pod.Status.Phase = corev1.PodFailed
		if t := p.pod.Status.ContainerStatuses[0].State.Terminated; t != nil && t.ExitCode == 0 {
			p.pod.Status.Phase = corev1.PodSucceeded
		}
	}
	p.gone = true
	p.emitLocked(StateDeleted, "", nil)
}

// --- reporting ---

func (p *Pod) emitLocked(state State, reason string, attrs map[string]string) {
	p.emitAtLocked(time.Now(), state, reason, attrs)
}

// emitAtLocked queues one change: a Record for the sink and a snapshot for
// OnStatus, delivered in order by dispatch.
func (p *Pod) emitAtLocked(at time.Time, state State, reason string, attrs map[string]string) {
	a := map[string]string{"ip": p.opts.IP}
	for k, v := range attrs {
		a[k] = v
	}
	rec := &timeline.Record{
		Kind: timeline.KindPod, Time: at, Source: Source, Scenario: p.opts.Scenario,
		Object: p.pod.Name, State: string(state), Reason: reason, Attrs: a,
	}
	var snap *corev1.Pod
	if p.opts.OnStatus != nil {
		snap = p.pod.DeepCopy()
	}
	p.queue = append(p.queue, event{rec: rec, pod: snap, state: state})
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// dispatch delivers queued changes in order, outside the lock, and closes
// done after the last one once the lifecycle has ended.
func (p *Pod) dispatch() {
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, e := range batch {
			p.rec.Write(e.rec) // the latch keeps its error for Err
			if p.opts.OnStatus != nil {
				p.opts.OnStatus(e.pod, e.state)
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-p.wake:
		case <-p.runDone:
			p.mu.Lock()
			empty := len(p.queue) == 0
			p.mu.Unlock()
			if empty {
				close(p.done)
				return
			}
		}
	}
}
