// Package soak rolls a Deployment over and over under constant traffic and
// counts the requests each rollout lost: the "deploy forever" loop of seed
// 003, done so that a race that shows once an hour shows up in the numbers.
//
// Each rollout: patch the pod template (Trigger), wait until the rollout
// is complete as `kubectl rollout status` decides, wait until the new
// version answers through the URL, settle, repeat. probe.Run sends traffic
// the whole time; every request is attributed to the rollout whose window
// (its patch until the next patch) contains the moment it was sent.
// Results stream out one rollout at a time and are then forgotten, and
// records go to the sink (a file), so memory stays flat however long soak
// runs.
package soak

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// Source is the Record.Source of soak's rollout marks.
const Source = "soak"

// SeqPlaceholder in Config.ExpectVersion stands for the trigger's sequence.
const SeqPlaceholder = "{seq}"

// Defaults for zero Config fields.
const (
	DefaultRolloutTimeout = 10 * time.Minute
	// DefaultReadyTimeout bounds the wait for the URL to answer once before
	// the first rollout.
	DefaultReadyTimeout = 30 * time.Second
)

// Rollout outcomes: the Result.Result values and the metrics' result label.
const (
	OutcomeClean       = "clean"         // complete, new version answered, no request lost
	OutcomeLost        = "lost_requests" // complete, but requests failed inside its window
	OutcomeFailed      = "failed"        // not complete in time, failed, or the new version never answered
	OutcomeInterrupted = "interrupted"   // soak was stopped during it
)

// Config says what to roll and how to watch it.
type Config struct {
	Client     kubernetes.Interface
	Namespace  string
	Deployment string
	Trigger    Trigger
	// Probe is the constant traffic; its URL, Rate, VersionHeader or
	// VersionRegex and ReplicaHeader matter here. Duration and Requests
	// are soak's to set.
	Probe probe.Config
	// ExpectVersion is the version the new pods answer with, SeqPlaceholder
	// standing for the sequence number a sequenced trigger wrote (default
	// "{seq}" for those triggers). With the annotation trigger it must be
	// empty: the new version is then recognized by the replica that
	// answered (Probe.ReplicaHeader) being a pod of the new ReplicaSet.
	ExpectVersion string
	// Rollouts stops after this many (0: no limit); Duration starts no
	// rollout after this long (0: no limit). Neither: until ctx ends.
	Rollouts int
	Duration time.Duration
	// RolloutTimeout bounds one rollout from its patch to the new version
	// answering.
	RolloutTimeout time.Duration
	// ReadyTimeout bounds the wait for the first successful request.
	ReadyTimeout time.Duration
	// Settle is the pause after a rollout before the next one (seed 003: 30s).
	Settle time.Duration
	// KeepGoing goes on after a rollout that failed to complete; by
	// default soak stops there, since patching again would pile rollouts up.
	KeepGoing bool
	// Sink receives every request record and rollout mark (nil: none).
	Sink timeline.Sink
	// OnResult receives each rollout's Result once its in-flight requests
	// are in, in rollout order. Do not keep it.
	OnResult func(*Result)
	// Progress, if set, is called about once a second.
	Progress func(Progress)
	// Metrics, if set, counts requests and rollouts as they happen.
	Metrics Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result is one rollout.
type Result struct {
	Rollout  int                       `json:"rollout"`
	Started  time.Time                 `json:"started"`           // the patch was sent
	Complete time.Time                 `json:"complete,omitzero"` // rollout status reached complete
	Seconds  float64                   `json:"seconds"`           // started → complete (or → giving up)
	Seq      uint64                    `json:"seq,omitempty"`     // the sequenced trigger's value
	Version  string                    `json:"version,omitempty"` // the version expected to answer
	Requests uint64                    `json:"requests"`          // sent inside the window
	Lost     uint64                    `json:"lost"`              // failed inside the window
	Failures map[timeline.Class]uint64 `json:"failures"`          // lost by class
	// NewVersionSeenAfter is seconds from the patch to the first successful
	// request answered by the new version (null: never).
	NewVersionSeenAfter *float64  `json:"new_version_seen_after_s"`
	WindowEnd           time.Time `json:"window_end"`
	Result              string    `json:"result"`
	Error               string    `json:"error"`
}

func (r *Result) outcome() string {
	switch {
	case r.Error == errInterrupted:
		return OutcomeInterrupted
	case r.Error != "":
		return OutcomeFailed
	case r.Lost > 0:
		return OutcomeLost
	}
	return OutcomeClean
}

const errInterrupted = "interrupted"

// Total sums every rollout and every request.
type Total struct {
	Rollouts    int `json:"rollouts"`
	Clean       int `json:"clean"`
	LostRollout int `json:"lost_rollouts"` // rollouts that lost at least one request (outcome lost_requests)
	Failed      int `json:"failed"`
	Interrupted int `json:"interrupted"`
	// Requests and Lost count every request, inside a window or not.
	Requests uint64                    `json:"requests"`
	Lost     uint64                    `json:"lost"`
	Failures map[timeline.Class]uint64 `json:"failures"`
	// Unattributed are failures outside every rollout window: before the
	// first patch, or completing after their window was reported.
	Unattributed map[timeline.Class]uint64 `json:"unattributed"`
	// BeforeReady counts failures before the URL first answered: the app
	// was not up yet. They are in neither Requests nor Lost.
	BeforeReady uint64  `json:"before_ready"`
	MaxSeconds  float64 `json:"max_rollout_seconds"`
	MeanSeconds float64 `json:"mean_rollout_seconds"`
	sumSeconds  float64
	completed   int
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
}

func (t *Total) add(r *Result) {
	t.Rollouts++
	switch r.Result {
	case OutcomeClean:
		t.Clean++
	case OutcomeLost:
		t.LostRollout++
	case OutcomeFailed:
		t.Failed++
	case OutcomeInterrupted:
		t.Interrupted++
	}
	if !r.Complete.IsZero() {
		t.completed++
		t.sumSeconds += r.Seconds
		t.MeanSeconds = t.sumSeconds / float64(t.completed)
		t.MaxSeconds = max(t.MaxSeconds, r.Seconds)
	}
}

func (t Total) clone() Total {
	t.Failures = maps.Clone(t.Failures)
	t.Unattributed = maps.Clone(t.Unattributed)
	return t
}

// Gate says why the run failed ("" when it passed): a rollout that did not
// complete, or lost requests past maxRatio (negative: any lost request).
func (t *Total) Gate(maxRatio float64) string {
	var why []string
	if t.Failed > 0 {
		why = append(why, fmt.Sprintf("%d of %d rollouts failed", t.Failed, t.Rollouts))
	}
	switch {
	case maxRatio < 0 && t.Lost > 0:
		why = append(why, fmt.Sprintf("%d of %d requests lost (%d rollouts lost requests)", t.Lost, t.Requests, t.LostRollout))
	case maxRatio >= 0 && t.Requests > 0 && float64(t.Lost)/float64(t.Requests) > maxRatio:
		why = append(why, fmt.Sprintf("%d of %d requests lost (%.4f%%), past the error budget %.4f%%",
			t.Lost, t.Requests, 100*float64(t.Lost)/float64(t.Requests), 100*maxRatio))
	}
	return strings.Join(why, "; ")
}

// Progress is the live state for a progress line.
type Progress struct {
	Rollout int
	State   string // the Deployment's rollout state, or soak's step
	Message string
	Total   Total
	Elapsed time.Duration
}

// ErrNotAnswering: the URL never answered successfully before the first
// rollout, so every number after would measure the URL, not the rollouts.
var ErrNotAnswering = errors.New("URL does not answer")

func (c *Config) check() error {
	switch {
	case c.Client == nil:
		return errors.New("soak: no Kubernetes client")
	case c.Namespace == "" || c.Deployment == "":
		return &InputError{"a namespace and a deployment are required"}
	case c.Rollouts < 0:
		return &InputError{fmt.Sprintf("rollouts %d: must not be negative", c.Rollouts)}
	case c.Duration < 0 || c.Settle < 0 || c.RolloutTimeout < 0 || c.ReadyTimeout < 0:
		return &InputError{"durations must not be negative"}
	}
	if c.ExpectVersion != "" && !c.Trigger.Sequenced() {
		return &InputError{"--expect-version needs a sequenced trigger (env:NAME or arg:INDEX): with the annotation trigger the new version is recognized by the replica that answered"}
	}
	if c.Trigger.Sequenced() && c.Probe.VersionHeader == "" && c.Probe.VersionRegex == nil {
		return &InputError{fmt.Sprintf("--trigger %s: say where the app answers its version (--version-header or --version-regex)", c.Trigger)}
	}
	if !c.Trigger.Sequenced() && c.Probe.ReplicaHeader == "" {
		c.Probe.ReplicaHeader = probe.DefaultReplicaHeader
	}
	if c.RolloutTimeout == 0 {
		c.RolloutTimeout = DefaultRolloutTimeout
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Probe.Timeout == 0 {
		c.Probe.Timeout = probe.DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Run soaks until the configured rollouts or duration are done or ctx
// ends, and returns the totals. An error means soak could not do the job
// (bad input: *InputError; missing RBAC: *PermissionError; the URL not
// answering: ErrNotAnswering; the API unreachable); lost requests and
// failed rollouts are data, judged by Total.Gate.
func Run(ctx context.Context, cfg Config) (*Total, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dep := &deployments{client: cfg.Client, namespace: cfg.Namespace, name: cfg.Deployment}
	// Everything the user can get wrong fails here, before any traffic.
	if err := Preflight(ctx, cfg.Client, cfg.Namespace); err != nil {
		return nil, err
	}
	d, err := dep.get(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.Trigger.current(d); err != nil {
		return nil, err
	}

	// The in-flight bound: a request sent before a window ended has
	// completed or timed out Timeout later (plus slack for scheduling).
	t := newTally(cfg.Sink, cfg.Probe.Timeout+time.Second, cfg.OnResult, cfg.Metrics)
	pcfg := cfg.Probe
	pcfg.Duration, pcfg.Requests, pcfg.Progress = 0, 0, nil
	if pcfg.Source == "" {
		pcfg.Source = probe.DefaultSource
	}
	// The prober outlives ctx by the time its in-flight requests take, so
	// an interrupted soak still counts them.
	probeCtx, stopProbe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProbe()
	s := &soaker{cfg: &cfg, dep: dep, tally: t, start: cfg.Now(), probeEnded: make(chan struct{})}
	go func() {
		sum, err := probe.Run(probeCtx, pcfg, t.request)
		s.probeErr, s.probeRefused = err, sum == nil
		close(s.probeEnded)
	}()
	// A prober that stops by itself (a failing sink) ends the rollouts too:
	// rollouts without traffic would prove nothing.
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	go func() {
		select {
		case <-s.probeEnded:
			stopLoop()
		case <-loopCtx.Done():
		}
	}()

	stopProgress := s.progress(loopCtx)
	loopErr := s.ready(loopCtx)
	if loopErr == nil {
		loopErr = s.loop(loopCtx)
	}
	stopProgress()
	stopProbe() // no new request; those in flight finish and reach the tally
	<-s.probeEnded
	t.finalizeAll(cfg.Now())
	total := t.snapshot()
	total.Start, total.End = s.start, cfg.Now()
	switch {
	case loopErr != nil:
	case s.probeRefused:
		loopErr = &InputError{fmt.Sprintf("probe: %v", s.probeErr)}
	case s.probeErr != nil:
		loopErr = fmt.Errorf("probe: %w", s.probeErr)
	case t.sinkErr != nil:
		loopErr = fmt.Errorf("record: %w", t.sinkErr)
	}
	return &total, loopErr
}

// soaker is one run's loop state.
type soaker struct {
	cfg   *Config
	dep   *deployments
	tally *tally
	start time.Time

	// probeEnded is closed when probe.Run returned, with its error, and
	// whether it refused the Config before sending anything.
	probeEnded   chan struct{}
	probeErr     error
	probeRefused bool

	rollout int
	state   string
	msg     string
}

// ready waits for the URL to answer once, so a wrong URL is one error, not
// a run of rollouts that all "lost" every request.
func (s *soaker) ready(ctx context.Context) error {
	timer := time.NewTimer(s.cfg.ReadyTimeout)
	defer timer.Stop()
	select {
	case <-s.tally.firstOK:
		return nil
	case <-ctx.Done():
		return nil // interrupted, or the prober stopped: Run says which
	case <-timer.C:
		s.tally.mu.Lock()
		last := s.tally.lastErr
		s.tally.mu.Unlock()
		if last == "" {
			last = "no answer at all"
		}
		return fmt.Errorf("%w: %s gave no successful answer in %v before the first rollout (last: %s)",
			ErrNotAnswering, s.cfg.Probe.URL, s.cfg.ReadyTimeout, last)
	}
}

func (s *soaker) setState(state, msg string) {
	s.tally.mu.Lock()
	s.state, s.msg = state, msg
	s.tally.mu.Unlock()
}

// progress calls cfg.Progress about once a second until the returned stop.
func (s *soaker) progress(ctx context.Context) (stop func()) {
	if s.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				s.tally.mu.Lock()
				p := Progress{Rollout: s.rollout, State: s.state, Message: s.msg, Total: s.tally.total.clone(), Elapsed: s.cfg.Now().Sub(s.start)}
				s.tally.mu.Unlock()
				s.cfg.Progress(p)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// loop runs rollouts until a limit, an error or ctx ends it.
func (s *soaker) loop(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	for n := 1; ; n++ {
		if s.cfg.Rollouts > 0 && n > s.cfg.Rollouts || s.cfg.Duration > 0 && s.cfg.Now().Sub(s.start) >= s.cfg.Duration {
			return nil
		}
		fatal, failed := s.one(ctx, n)
		if fatal != nil || ctx.Err() != nil {
			return fatal
		}
		if failed && !s.cfg.KeepGoing {
			return nil
		}
	}
}

// one runs rollout n. fatal ends the soak (RBAC, bad input, the record);
// failed says the rollout itself did not make it.
func (s *soaker) one(ctx context.Context, n int) (fatal error, failed bool) {
	s.tally.mu.Lock()
	s.rollout, s.state, s.msg = n, "patching", ""
	s.tally.mu.Unlock()
	start := s.cfg.Now()
	w := s.tally.open(n, start)
	fail := func(err error) {
		msg := err.Error()
		if ctx.Err() != nil {
			msg = errInterrupted
		}
		s.tally.update(w, func(r *Result) {
			r.Error = msg
			r.Seconds = s.cfg.Now().Sub(start).Seconds()
		})
		s.mark(n, "failed", msg, nil)
	}
	defer func() { s.tally.close(w, s.cfg.Now()) }()

	rctx, cancel := context.WithTimeout(ctx, s.cfg.RolloutTimeout)
	defer cancel()
	patched, pt, err := s.dep.trigger(rctx, s.cfg.Trigger, func(d *appsv1.Deployment) (patch, error) {
		return s.cfg.Trigger.next(d, start)
	})
	if err != nil {
		fail(err)
		if isFatal(err) {
			return err, true
		}
		return nil, true
	}
	version := ""
	if s.cfg.Trigger.Sequenced() {
		version = strings.ReplaceAll(cmp.Or(s.cfg.ExpectVersion, SeqPlaceholder), SeqPlaceholder, strconv.FormatUint(pt.seq, 10))
		s.tally.expect(w, map[string]bool{version: true}, false)
	}
	s.tally.update(w, func(r *Result) { r.Seq, r.Version = pt.seq, version })
	if err := s.mark(n, "started", "patched "+s.cfg.Trigger.String(), map[string]string{"generation": strconv.FormatInt(patched.Generation, 10), "version": version}); err != nil {
		return err, true
	}

	done, err := s.dep.waitComplete(rctx, patched.Generation, func(state, msg string) { s.setState(state, msg) })
	if err != nil {
		if rctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("rollout timeout %v: %w", s.cfg.RolloutTimeout, err)
		}
		fail(err)
		return fatalOnly(err), true
	}
	completeAt := s.cfg.Now()
	s.tally.update(w, func(r *Result) { r.Complete = completeAt; r.Seconds = completeAt.Sub(start).Seconds() })
	if err := s.mark(n, "complete", "successfully rolled out", map[string]string{"revision": done.Annotations[revisionAnnotation]}); err != nil {
		return err, true
	}

	s.setState("confirming", "waiting for the new version to answer")
	if !s.cfg.Trigger.Sequenced() {
		names, err := s.dep.newReplicas(rctx, done)
		if err != nil {
			fail(err)
			return fatalOnly(err), true
		}
		s.tally.expect(w, names, true)
	}
	select {
	case <-w.seenCh:
	case <-rctx.Done():
		what := "the new version (" + version + ")"
		if version == "" {
			what = "a pod of the new ReplicaSet (" + s.cfg.Probe.ReplicaHeader + ")"
		}
		fail(fmt.Errorf("rollout timeout %v: complete, but no request was answered by %s", s.cfg.RolloutTimeout, what))
		return nil, true
	}
	seen := s.tally.seenAt(w)
	if err := s.mark(n, "version_seen", "the new version answered", map[string]string{"after_s": strconv.FormatFloat(seen.Sub(start).Seconds(), 'f', 3, 64)}); err != nil {
		return err, true
	}
	s.setState("settling", "")
	sleep(ctx, s.cfg.Settle)
	return nil, false
}

// mark writes a KindRollout record for rollout n.
func (s *soaker) mark(n int, state, reason string, attrs map[string]string) error {
	a := map[string]string{"rollout": strconv.Itoa(n), "namespace": s.cfg.Namespace}
	for k, v := range attrs {
		if v != "" {
			a[k] = v
		}
	}
	return s.tally.mark(&timeline.Record{Kind: timeline.KindRollout, Time: s.cfg.Now(), Source: Source,
		Scenario: s.cfg.Probe.Scenario, Object: s.cfg.Deployment, State: state, Reason: reason, Attrs: a})
}

// isFatal: errors no further rollout can get past.
func isFatal(err error) bool {
	var pe *PermissionError
	var ie *InputError
	return errors.As(err, &pe) || errors.As(err, &ie)
}

func fatalOnly(err error) error {
	if isFatal(err) {
		return err
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
