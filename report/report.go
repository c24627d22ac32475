// Package report joins recorded timelines (request records from probe or
// the lab, pod and target records from observe or the lab) into one
// picture: outcomes, failures and latency over time, which replicas
// answered, and the pod and target state lanes under them. Build gives the
// numbers (its JSON is `report --output json`); HTML draws the same numbers.
package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options shape a report. Zero values take the defaults.
type Options struct {
	Bin         time.Duration // width of one time bin (default 100 ms)
	MaxBins     int           // the bin widens so a long run fits (default 2000)
	MaxFailures int           // failing requests listed one by one (default 200)
}

// Report is everything the HTML shows. Times are offsets in ms from Start.
type Report struct {
	Files   []string       `json:"files"`
	Start   time.Time      `json:"start"`
	End     time.Time      `json:"end"`
	BinMS   float64        `json:"bin_ms"`
	Summary *probe.Summary `json:"summary"` // the same numbers `probe --output json` prints
	Bins    []Bin          `json:"bins"`
	// Replicas lists every replica that answered, in order of first answer.
	Replicas []string     `json:"replicas"`
	Causes   []CauseCount `json:"causes,omitempty"`
	Failures []Failure    `json:"failures,omitempty"` // the first MaxFailures, by time
	Lanes    []Lane       `json:"lanes,omitempty"`
	Marks    []Mark       `json:"marks,omitempty"`
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

// CauseCount is how many failures of a class were attributed to a cause.
type CauseCount struct {
	Class timeline.Class `json:"class"`
	Cause timeline.Cause `json:"cause"`
	Count uint64         `json:"count"`
}

// Failure is one failed request.
type Failure struct {
	AtMS    float64        `json:"t_ms"`
	Source  string         `json:"source,omitempty"`
	Seq     uint64         `json:"seq,omitempty"`
	Class   timeline.Class `json:"class"`
	Status  int            `json:"status,omitempty"`
	Cause   timeline.Cause `json:"cause,omitempty"`
	Replica string         `json:"replica,omitempty"`
	Error   string         `json:"error,omitempty"`
	TraceID string         `json:"trace_id,omitempty"`
	// Pods and Targets are each pod's and each target's latest recorded
	// state at or before the instant the request was sent: what the seeds'
	// aws_alb_test.sh printed by hand before every curl. Objects first seen
	// later are left out. Sorted by object name.
	Pods    []StateAt `json:"pods,omitempty"`
	Targets []StateAt `json:"targets,omitempty"`
}

// StateAt is one object's state as last recorded before a failure.
type StateAt struct {
	Object string `json:"object"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// SinceMS is when that record was made (offset from Report.Start), so a
	// reader sees how fresh the evidence is (a poller sees changes late).
	SinceMS float64 `json:"since_ms"`
}

// Lane is the state history of one pod or target.
type Lane struct {
	Kind     timeline.Kind `json:"kind"`
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

// Mark is a rollout or other event worth a line across the charts.
type Mark struct {
	AtMS   float64       `json:"t_ms"`
	Kind   timeline.Kind `json:"kind"`
	Object string        `json:"object,omitempty"`
	Text   string        `json:"text,omitempty"`
}

// request is a request record cut down to what the report needs, so a
// million-request timeline fits in memory (strings are interned).
type request struct {
	at, sent, sched int64 // unix ns; at is sched if set, else sent
	lat, bytes      int64
	status          int32
	class           timeline.Class
	replica         int32 // index into strs, -1 for none
	version         int32
	fail            int32 // index into fails, -1 for ok
}

type builder struct {
	opts   Options
	reqs   []request
	strs   []string
	strIdx map[string]int32
	fails  []Failure
	states []*timeline.Record // pod, target, rollout, event records
	causes map[CauseCount]uint64
}

func (b *builder) intern(s string) int32 {
	if s == "" {
		return -1
	}
	if i, ok := b.strIdx[s]; ok {
		return i
	}
	b.strs = append(b.strs, s)
	b.strIdx[s] = int32(len(b.strs) - 1)
	return int32(len(b.strs) - 1)
}

func (b *builder) add(r *timeline.Record) error {
	if r.Time.IsZero() {
		return fmt.Errorf("record has no \"time\"")
	}
	if r.Kind != timeline.KindRequest {
		b.states = append(b.states, r)
		return nil
	}
	if r.Class == "" {
		return fmt.Errorf("request record has no \"class\"")
	}
	q := request{sent: r.Time.UnixNano(), lat: int64(r.Latency), bytes: r.Bytes, status: int32(r.Status),
		class: r.Class, replica: b.intern(r.Replica), version: b.intern(r.Version), fail: -1}
	q.at = q.sent
	if !r.Scheduled.IsZero() {
		q.sched = r.Scheduled.UnixNano()
		q.at = q.sched
	}
	if r.Failed() {
		q.fail = int32(len(b.fails))
		b.fails = append(b.fails, Failure{Source: r.Source, Seq: r.Seq, Class: r.Class, Status: r.Status,
			Cause: r.Cause, Replica: r.Replica, Error: r.Error, TraceID: r.TraceID})
		if r.Cause != "" {
			b.causes[CauseCount{Class: r.Class, Cause: r.Cause}]++
		}
	}
	b.reqs = append(b.reqs, q)
	return nil
}

// Build reads the NDJSON timelines at paths and computes the report. A
// file that cannot be read fails the build with file:line.
func Build(paths []string, opts Options) (*Report, error) {
	b := &builder{opts: opts, strIdx: map[string]int32{}, causes: map[CauseCount]uint64{}}
	for _, p := range paths {
		if err := timeline.ReadFile(p, b.add); err != nil {
			return nil, err
		}
	}
	return b.build(paths), nil
}

func (b *builder) build(paths []string) *Report {
	o := b.opts
	if o.Bin <= 0 {
		o.Bin = 100 * time.Millisecond
	}
	if o.MaxBins <= 0 {
		o.MaxBins = 2000
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 200
	}
	slices.SortStableFunc(b.reqs, func(x, y request) int { return cmp.Compare(x.at, y.at) })
	slices.SortStableFunc(b.states, func(x, y *timeline.Record) int { return x.Time.Compare(y.Time) })

	rep := &Report{Files: paths, Replicas: []string{}}
	start, end := b.span()
	rep.Start, rep.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
	bin := int64(o.Bin)
	if n := (end - start) / bin; n >= int64(o.MaxBins) {
		bin = ((end-start)/int64(o.MaxBins)/int64(o.Bin) + 1) * int64(o.Bin) // a whole multiple of the asked bin
	}
	rep.BinMS = nsToMS(bin)
	rep.Summary = b.summary()
	rep.Bins = b.bins(start, end, bin, rep)
	rep.Failures = b.failures(start, o.MaxFailures)
	rep.Causes = b.causeList()
	rep.Lanes, rep.Marks = b.lanes(start, end)
	return rep
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
			Status: int(q.status), Class: q.class, Bytes: q.bytes, Replica: b.str(q.replica), Version: b.str(q.version)}
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

// bins counts requests per bin; latency percentiles are exact (nearest rank).
func (b *builder) bins(start, end, bin int64, rep *Report) []Bin {
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
		if q.class == timeline.ClassOK {
			bn.OK++
		} else {
			if bn.Failures == nil {
				bn.Failures = map[timeline.Class]uint64{}
			}
			bn.Failures[q.class]++
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
		lats = append(lats, q.lat)
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

func (b *builder) failures(start int64, limit int) []Failure {
	var out []Failure
	hist := newHistories(b.states)
	for _, q := range b.reqs {
		if q.fail < 0 {
			continue
		}
		if len(out) == limit {
			break
		}
		f := b.fails[q.fail]
		f.AtMS = nsToMS(q.at - start)
		f.Pods = hist.at(timeline.KindPod, q.sent, start)
		f.Targets = hist.at(timeline.KindTarget, q.sent, start)
		out = append(out, f)
	}
	return out
}

func (b *builder) causeList() []CauseCount {
	var out []CauseCount
	for k, n := range b.causes {
		k.Count = n
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y CauseCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Class, y.Class), cmp.Compare(x.Cause, y.Cause))
	})
	return out
}

// lanes turns pod and target records into state segments, one lane per
// object; rollout and event records become marks.
func (b *builder) lanes(start, end int64) ([]Lane, []Mark) {
	var lanes []Lane
	idx := map[[2]string]int{}
	var marks []Mark
	for _, r := range b.states {
		at := nsToMS(r.Time.UnixNano() - start)
		if r.Kind != timeline.KindPod && r.Kind != timeline.KindTarget {
			text := r.State
			if r.Reason != "" && text != "" {
				text += ": "
			}
			text += r.Reason
			marks = append(marks, Mark{AtMS: at, Kind: r.Kind, Object: r.Object, Text: text})
			continue
		}
		key := [2]string{string(r.Kind), r.Object}
		i, ok := idx[key]
		if !ok {
			i = len(lanes)
			idx[key] = i
			lanes = append(lanes, Lane{Kind: r.Kind, Object: r.Object})
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
	slices.SortStableFunc(lanes, func(x, y Lane) int { return cmp.Compare(x.Kind, y.Kind) })
	return lanes, marks
}

// histories holds every pod's and target's records in time order, one list
// per object, so "state at instant t" is a binary search per object.
type histories map[timeline.Kind][]history

type history struct {
	object string
	recs   []*timeline.Record // by time; states are sorted before this is built
}

func newHistories(states []*timeline.Record) histories {
	h := histories{}
	idx := map[[2]string]int{}
	for _, r := range states {
		if r.Kind != timeline.KindPod && r.Kind != timeline.KindTarget {
			continue
		}
		key := [2]string{string(r.Kind), r.Object}
		i, ok := idx[key]
		if !ok {
			i = len(h[r.Kind])
			idx[key] = i
			h[r.Kind] = append(h[r.Kind], history{object: r.Object})
		}
		h[r.Kind][i].recs = append(h[r.Kind][i].recs, r)
	}
	for _, l := range h {
		slices.SortFunc(l, func(x, y history) int { return cmp.Compare(x.object, y.object) })
	}
	return h
}

// at is the latest record of each object of kind at or before t (unix ns).
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
		out = append(out, StateAt{Object: o.object, State: r.State, Reason: r.Reason, SinceMS: nsToMS(r.Time.UnixNano() - start)})
	}
	return out
}
