// Package report joins recorded timelines (request records from probe or
// the lab, pod and target records from observe or the lab) and ALB access
// logs into one picture per run (the records' scenario): the attribution of
// every failed request from evidence alone (package attribution: cause,
// confidence, the chain of evidence, measured propagation P), outcomes,
// failures and latency over time, which replicas answered, and the pod and
// target state lanes. Build gives the numbers (its JSON is `report --output
// json`); HTML draws the same numbers.
package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/attribution"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options shape a report. Zero values take the defaults.
type Options struct {
	Bin     time.Duration // width of one time bin (default 100 ms)
	MaxBins int           // the bin widens so a long run fits (default 2000)
	// Title heads the page (default: the scenarios, else the files' names).
	Title string
	// Attribution tunes the attribution.
	Attribution attribution.Options
	// AccessLog tunes the reading of access logs (S3 client, workers).
	AccessLog accesslog.Options
}

// Report is everything the HTML shows: one Run per scenario or run.
type Report struct {
	Title string    `json:"title"`
	Files []string  `json:"files"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Runs  []*Run    `json:"runs"`
	// AccessLog says what was read from access logs, when any were given.
	AccessLog *accesslog.Stats `json:"access_log,omitempty"`
}

// Run is one scenario's (or one unlabelled run's) picture. Times are
// offsets in ms from Start.
type Run struct {
	Scenario string         `json:"scenario"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	BinMS    float64        `json:"bin_ms"`
	Summary  *probe.Summary `json:"summary"` // the same numbers `probe --output json` prints
	// Attribution is the run's causes, headline, propagation, join and
	// agreement; its failures are in Failures below, with their states.
	Attribution *attribution.Run `json:"attribution"`
	// Failures lists every failed request, by time, with its cause.
	Failures []Failure `json:"failures"`
	Bins     []Bin     `json:"bins"`
	// Replicas lists every replica that answered, in order of first answer.
	Replicas []string `json:"replicas"`
	Lanes    []Lane   `json:"lanes,omitempty"`
	Marks    []Mark   `json:"marks,omitempty"`
}

// Bin is one slice of time, by the time requests were due (or sent).
type Bin struct {
	AtMS     float64                   `json:"t_ms"`
	Requests uint64                    `json:"requests"`
	OK       uint64                    `json:"ok"`
	Failures map[timeline.Class]uint64 `json:"failures,omitempty"`
	P50      float64                   `json:"p50_ms"`
	P90      float64                   `json:"p90_ms"`
	P99      float64                   `json:"p99_ms"`
	Max      float64                   `json:"max_ms"`
	Replicas map[string]uint64         `json:"replicas,omitempty"`
}

// Failure is one failed request: its attribution, and each pod's and
// target's latest recorded state at or before the instant it was sent —
// what the seeds' aws_alb_test.sh printed by hand before every curl.
// Objects first seen later, and objects gone (a deleted pod, an unused
// target) more than 5 s before, are left out. Sorted by object name.
type Failure struct {
	AtMS float64 `json:"t_ms"`
	attribution.Failure
	Pods    []StateAt `json:"pods,omitempty"`
	Targets []StateAt `json:"targets,omitempty"`
}

// StateAt is one object's state as last recorded before a failure.
type StateAt struct {
	Object string `json:"object"`
	Source string `json:"source,omitempty"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// SinceMS is when that record was made (offset from Run.Start), so a
	// reader sees how fresh the evidence is (a poller sees changes late).
	SinceMS float64 `json:"since_ms"`
}

// Lane is the state history of one pod or target as one source recorded
// it: the lab's ground truth (Source lab) and what the Kubernetes API or the
// ELBv2 API showed (kube, elbv2) are separate lanes.
type Lane struct {
	Kind     timeline.Kind `json:"kind"`
	Source   string        `json:"source,omitempty"`
	Object   string        `json:"object"`
	Segments []Segment     `json:"segments"`
}

// Segment is one state held from FromMS to ToMS.
type Segment struct {
	State  string  `json:"state"`
	Reason string  `json:"reason,omitempty"`
	FromMS float64 `json:"from_ms"`
	ToMS   float64 `json:"to_ms"`
}

// Mark is a rollout step or another event, listed in the events table;
// Line says whether the charts draw it as a line across.
type Mark struct {
	AtMS   float64       `json:"t_ms"`
	Kind   timeline.Kind `json:"kind"`
	Object string        `json:"object,omitempty"`
	Text   string        `json:"text,omitempty"`
	Line   bool          `json:"line,omitempty"`
}

// request is a request record cut down to what the report needs, so a
// million-request timeline fits in memory. Strings are interned (indexes
// into builder.strs), which also leaves it without pointers: the garbage
// collector never scans a million of them.
type request struct {
	at, sent, sched int64 // unix ns; at is sched if set, else sent
	lat, bytes      int64
	status          int32
	class           int32 // index into strs
	replica         int32 // index into strs, -1 for none
	version         int32
	method          int32
}

type builder struct {
	opts    Options
	name    string
	chunks  [][]request // filled by add
	reqs    []request   // the chunks joined, for build
	recent  [8]interned // the strings interned last
	okClass int32       // strs index of "ok"
	strs    []string
	strIdx  map[string]int32
	states  []*timeline.Record // pod, target, rollout, event records
}

func (b *builder) intern(s string) int32 {
	if s == "" {
		return -1
	}
	// A run has a handful of replicas and versions: the last few hits
	// spare a map lookup per record.
	for _, c := range b.recent {
		if c.s == s {
			return c.i
		}
	}
	if i, ok := b.strIdx[s]; ok {
		b.remember(s, i)
		return i
	}
	b.strs = append(b.strs, s)
	i := int32(len(b.strs) - 1)
	b.strIdx[s] = i
	b.remember(s, i)
	return i
}

type interned struct {
	s string
	i int32
}

func (b *builder) remember(s string, i int32) {
	copy(b.recent[1:], b.recent[:len(b.recent)-1])
	b.recent[0] = interned{s, i}
}

// chunk is how many requests one block of storage holds: appending to
// fixed blocks and joining them once costs less than regrowing one slice
// of a million.
const chunk = 1 << 16

func (b *builder) addRequest(q request) {
	if n := len(b.chunks); n == 0 || len(b.chunks[n-1]) == chunk {
		b.chunks = append(b.chunks, make([]request, 0, chunk))
	}
	last := &b.chunks[len(b.chunks)-1]
	*last = append(*last, q)
}

// joinChunks turns the blocks into the one slice build sorts.
func (b *builder) joinChunks() {
	n := 0
	for _, c := range b.chunks {
		n += len(c)
	}
	b.reqs = make([]request, 0, n)
	for _, c := range b.chunks {
		b.reqs = append(b.reqs, c...)
	}
	b.chunks = nil
}

func (b *builder) add(r *timeline.Record) {
	switch {
	case r.Kind == timeline.KindTruth:
		return // the lab's ground truth: attribution compares with it
	case r.Kind != timeline.KindRequest:
		b.states = append(b.states, r)
		return
	case r.Source == "accesslog":
		return // an access-log entry as a record: evidence, not a probe request
	}
	q := request{sent: r.Time.UnixNano(), lat: int64(r.Latency), bytes: r.Bytes, status: int32(r.Status),
		class: b.intern(string(r.Class)), replica: b.intern(r.Replica), version: b.intern(r.Version), method: b.intern(r.Method)}
	q.at = q.sent
	if !r.Scheduled.IsZero() {
		q.sched = r.Scheduled.UnixNano()
		q.at = q.sched
	}
	b.addRequest(q)
}

// Build reads the inputs — NDJSON timelines and ALB access logs, told apart
// by content (ClassifyInputs) — attributes every failure and computes the
// report, one Run per scenario. A line that cannot be read fails the build
// with file:line.
func Build(ctx context.Context, paths []string, opts Options) (*Report, error) {
	in, err := ClassifyInputs(paths)
	if err != nil {
		return nil, err
	}
	an := attribution.New(opts.Attribution)
	runs := map[string]*builder{}
	var order []string
	add := func(r *timeline.Record) error {
		if r.Time.IsZero() {
			return fmt.Errorf("record has no \"time\"")
		}
		if r.Kind == timeline.KindRequest && r.Class == "" {
			return fmt.Errorf("request record has no \"class\"")
		}
		if err := an.Add(r); err != nil {
			return err
		}
		b, ok := runs[r.Scenario]
		if !ok {
			b = &builder{opts: opts, name: r.Scenario, strIdx: map[string]int32{}}
			runs[r.Scenario] = b
			order = append(order, r.Scenario)
		}
		b.add(r)
		return nil
	}
	for _, p := range in.Timelines {
		if err := readTimeline(p, add); err != nil {
			return nil, err
		}
	}
	rep := &Report{Files: paths}
	if len(in.AccessLogs) > 0 {
		stats, err := an.ScanAccessLogs(ctx, in.AccessLogs, opts.AccessLog)
		if err != nil {
			return nil, err
		}
		if len(stats.Problems) > 0 {
			return nil, stats.Problems[0]
		}
		rep.AccessLog = &stats
	}
	res := an.Result()
	byName := map[string]*attribution.Run{}
	for _, r := range res.Runs {
		byName[r.Scenario] = r
	}
	if len(order) == 0 && len(res.Runs) > 0 {
		order = append(order, res.Runs[0].Scenario) // access logs alone
		runs[order[0]] = &builder{opts: opts, strIdx: map[string]int32{}}
	}
	for _, name := range order {
		ar := byName[name]
		if ar == nil {
			continue // marks only (a lab's scenario boundary)
		}
		run := runs[name].build(ar)
		rep.Runs = append(rep.Runs, run)
		if rep.Start.IsZero() || run.Start.Before(rep.Start) {
			rep.Start = run.Start
		}
		rep.End = maxTime(rep.End, run.End)
	}
	rep.Title = title(opts.Title, rep, paths)
	return rep, nil
}

func readTimeline(path string, fn func(*timeline.Record) error) error {
	f, err := openInput(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return timeline.Read(f, path, fn)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// title is the page's heading: the caller's, else the scenarios, else the
// files' base names.
func title(t string, rep *Report, paths []string) string {
	if t != "" {
		return t
	}
	var names []string
	for _, r := range rep.Runs {
		if r.Scenario != "" {
			names = append(names, r.Scenario)
		}
	}
	if len(names) == 0 {
		for _, p := range paths {
			names = append(names, filepath.Base(p))
		}
	}
	return "rollsafe report: " + strings.Join(names, ", ")
}

func (b *builder) build(ar *attribution.Run) *Run {
	o := b.opts
	if o.Bin <= 0 {
		o.Bin = 100 * time.Millisecond
	}
	if o.MaxBins <= 0 {
		o.MaxBins = 2000
	}
	b.joinChunks()
	slices.SortStableFunc(b.reqs, func(x, y request) int { return cmp.Compare(x.at, y.at) })
	slices.SortStableFunc(b.states, func(x, y *timeline.Record) int { return x.Time.Compare(y.Time) })

	run := &Run{Scenario: b.name, Replicas: []string{}, Attribution: ar}
	start, end := b.span()
	run.Start, run.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
	bin := int64(o.Bin)
	if n := (end - start) / bin; n >= int64(o.MaxBins) {
		bin = ((end-start)/int64(o.MaxBins)/int64(o.Bin) + 1) * int64(o.Bin) // a whole multiple of the asked bin
	}
	run.BinMS = nsToMS(bin)
	// The summary only reads the requests, and costs as much as the rest
	// together on a big run: it runs beside it.
	b.okClass = b.intern(string(timeline.ClassOK))
	var sum sync.WaitGroup
	sum.Go(func() { run.Summary = b.summary() })
	run.Bins = b.bins(start, end, bin, run)
	run.Failures = b.failures(start, ar)
	run.Lanes, run.Marks = b.lanes(start, end)
	sum.Wait()
	return run
}

func nsToMS(ns int64) float64 { return float64(ns) / 1e6 }

// span is from the first record to the last request's end or state change.
func (b *builder) span() (int64, int64) {
	start, end := int64(math.MaxInt64), int64(math.MinInt64)
	for _, q := range b.reqs {
		start = min(start, q.at, q.sent)
		end = max(end, q.at+q.lat)
	}
	for _, r := range b.states {
		start = min(start, r.Time.UnixNano())
		end = max(end, r.Time.UnixNano())
	}
	if start > end { // nothing at all
		return 0, 0
	}
	return start, end
}

// summary feeds the requests to probe.Summary, in time order, so the totals
// and percentiles are those the prober itself reports.
func (b *builder) summary() *probe.Summary {
	s := probe.NewSummary(0, probe.DefaultLateAfter, probe.DefaultTimeout)
	var r timeline.Record
	for _, q := range b.reqs {
		r = timeline.Record{Kind: timeline.KindRequest, Time: time.Unix(0, q.sent), Latency: time.Duration(q.lat),
			Status: int(q.status), Class: timeline.Class(b.str(q.class)), Bytes: q.bytes, Replica: b.str(q.replica), Version: b.str(q.version), Method: b.str(q.method)}
		if q.sched != 0 {
			r.Scheduled = time.Unix(0, q.sched)
		}
		s.Add(&r)
	}
	s.Close()
	s.PerSecond = nil // the bins below say it finer
	return s
}

func (b *builder) str(i int32) string {
	if i < 0 {
		return ""
	}
	return b.strs[i]
}

// bins counts requests per bin; latency percentiles, of the requests that
// succeeded, are exact (nearest rank).
func (b *builder) bins(start, end, bin int64, rep *Run) []Bin {
	if len(b.reqs) == 0 && len(b.states) == 0 {
		return nil
	}
	bins := make([]Bin, (end-start)/bin+1)
	for i := range bins {
		bins[i].AtMS = nsToMS(int64(i) * bin)
	}
	seen := map[int32]bool{}
	var lats []int64
	flush := func(i int) {
		if len(lats) == 0 {
			return
		}
		slices.Sort(lats)
		bn := &bins[i]
		bn.P50, bn.P90, bn.P99 = rank(lats, 50), rank(lats, 90), rank(lats, 99)
		bn.Max = nsToMS(lats[len(lats)-1])
		lats = lats[:0]
	}
	cur := -1
	for _, q := range b.reqs {
		i := int((q.at - start) / bin)
		if i != cur {
			if cur >= 0 {
				flush(cur)
			}
			cur = i
		}
		bn := &bins[i]
		bn.Requests++
		if q.class == b.okClass {
			bn.OK++
		} else {
			if bn.Failures == nil {
				bn.Failures = map[timeline.Class]uint64{}
			}
			bn.Failures[timeline.Class(b.strs[q.class])]++
		}
		if q.replica >= 0 {
			if !seen[q.replica] {
				seen[q.replica] = true
				rep.Replicas = append(rep.Replicas, b.strs[q.replica])
			}
			if bn.Replicas == nil {
				bn.Replicas = map[string]uint64{}
			}
			bn.Replicas[b.strs[q.replica]]++
		}
		if q.class == b.okClass {
			// Failed requests are drawn by class; their latency (an instant
			// refusal, or a timeout) would drag the percentiles of the
			// answered requests to 0 or to the timeout.
			lats = append(lats, q.lat)
		}
	}
	if cur >= 0 {
		flush(cur)
	}
	return bins
}

func rank(sorted []int64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return nsToMS(sorted[max(i, 0)])
}

// failures pairs every attributed failure with the states at its instant.
func (b *builder) failures(start int64, ar *attribution.Run) []Failure {
	hist := newHistories(b.states)
	out := make([]Failure, 0, len(ar.Failures))
	for _, af := range ar.Failures {
		sent := af.Time.UnixNano()
		out = append(out, Failure{AtMS: nsToMS(sent - start), Failure: af,
			Pods: hist.at(timeline.KindPod, sent, start), Targets: hist.at(timeline.KindTarget, sent, start)})
	}
	slices.SortStableFunc(out, func(x, y Failure) int { return cmp.Compare(x.AtMS, y.AtMS) })
	ar.Failures = nil // listed once, in Run.Failures
	return out
}

// lanes turns pod and target records into state segments, one lane per
// object; rollout and event records become marks.
func (b *builder) lanes(start, end int64) ([]Lane, []Mark) {
	var lanes []Lane
	idx := map[[3]string]int{}
	var marks []Mark
	lineState := map[string]string{}
	for _, r := range b.states {
		at := nsToMS(r.Time.UnixNano() - start)
		if r.Kind != timeline.KindPod && r.Kind != timeline.KindTarget {
			text := r.State
			if r.Reason != "" && text != "" {
				text += ": "
			}
			text += r.Reason
			m := Mark{AtMS: at, Kind: r.Kind, Object: r.Object, Text: text}
			// A line across the charts for a rollout's steps — the lab's
			// marks, a Deployment's state as the API showed it — and only
			// when that state changed; the rest (ReplicaSets, LB nodes
			// learning, attribute polls) is in the events table.
			if r.Kind == timeline.KindRollout && (r.Source != "kube" || r.Attrs["resource"] == "deployment") &&
				lineState[r.Object] != r.State {
				m.Line = true
				lineState[r.Object] = r.State
			}
			marks = append(marks, m)
			continue
		}
		key := [3]string{string(r.Kind), r.Source, r.Object}
		i, ok := idx[key]
		if !ok {
			i = len(lanes)
			idx[key] = i
			lanes = append(lanes, Lane{Kind: r.Kind, Source: r.Source, Object: r.Object})
		}
		segs := lanes[i].Segments
		if n := len(segs); n > 0 {
			if segs[n-1].State == r.State {
				continue // a repeated observation, not a change
			}
			segs[n-1].ToMS = at
		}
		lanes[i].Segments = append(segs, Segment{State: r.State, Reason: r.Reason, FromMS: at})
	}
	for i := range lanes {
		s := lanes[i].Segments
		s[len(s)-1].ToMS = nsToMS(end - start)
	}
	slices.SortStableFunc(lanes, func(x, y Lane) int { return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Source, y.Source)) })
	return lanes, marks
}

// histories holds every pod's and target's records in time order, one list
// per object, so "state at instant t" is a binary search per object.
type histories map[timeline.Kind][]history

type history struct {
	object string
	source string
	recs   []*timeline.Record // by time; states are sorted before this is built
}

func newHistories(states []*timeline.Record) histories {
	h := histories{}
	idx := map[[3]string]int{}
	for _, r := range states {
		if r.Kind != timeline.KindPod && r.Kind != timeline.KindTarget {
			continue
		}
		key := [3]string{string(r.Kind), r.Source, r.Object}
		i, ok := idx[key]
		if !ok {
			i = len(h[r.Kind])
			idx[key] = i
			h[r.Kind] = append(h[r.Kind], history{object: r.Object, source: r.Source})
		}
		h[r.Kind][i].recs = append(h[r.Kind][i].recs, r)
	}
	for _, l := range h {
		slices.SortFunc(l, func(x, y history) int {
			return cmp.Or(cmp.Compare(x.object, y.object), cmp.Compare(x.source, y.source))
		})
	}
	return h
}

// goneFor is how long an object that is gone (a deleted pod, an unused
// target, as any source records it) still shows in the states at a failure.
const goneFor = 5 * time.Second

func gone(r *timeline.Record) bool {
	switch r.State {
	case "Deleted", "unused":
		return true
	}
	return false
}

// at is the latest record of each object of kind at or before t (unix ns),
// leaving out objects gone more than goneFor before t.
// A record stamped exactly t counts: the request saw that state.
func (h histories) at(kind timeline.Kind, t, start int64) []StateAt {
	var out []StateAt
	for _, o := range h[kind] {
		// first record after t; the one before it is the state at t
		i, _ := slices.BinarySearchFunc(o.recs, t, func(r *timeline.Record, t int64) int {
			if r.Time.UnixNano() <= t {
				return -1
			}
			return 1
		})
		if i == 0 {
			continue // not yet seen at t
		}
		r := o.recs[i-1]
		if gone(r) && t-r.Time.UnixNano() > int64(goneFor) {
			continue // long gone: it had no part in this request
		}
		out = append(out, StateAt{Object: o.object, Source: o.source, State: r.State, Reason: r.Reason, SinceMS: nsToMS(r.Time.UnixNano() - start)})
	}
	return out
}
