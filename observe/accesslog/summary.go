package accesslog

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// Failed reports whether the load balancer answered the client with a 5xx,
// or with no status at all ("-"). 4xx are the application's business, and
// 460 (client closed the connection) is not an availability failure.
func (e *Entry) Failed() bool { return e.ELBStatusCode >= 500 || e.ELBStatusCode == 0 }

// When is when the load balancer received the request, which is when it
// chose the target; lines without request_creation_time fall back to the
// response time.
func (e *Entry) When() time.Time {
	if !e.RequestCreationTime.IsZero() {
		return e.RequestCreationTime
	}
	return e.Time
}

// NoTarget is the target key of requests the load balancer never dispatched.
const NoTarget = "-"

// Summary counts what access logs say about availability. It is a Visitor:
// give each Scan worker its own (NewSummary) and Merge them afterwards.
type Summary struct {
	Requests, Failures int64
	First, Last        time.Time
	Targets            map[string]*Count // by target ip:port, NoTarget for undispatched
	ELBStatus          map[int]int64     // 0 stands for "-"
	TargetStatus       map[int]int64     // 0 stands for "-"
	Minutes            map[int64]*Count  // by Unix minute of When
	ErrorReasons       map[string]int64
	// FailureList holds every failed request, up to MaxFailures.
	FailureList []Failure
	MaxFailures int
	// FailuresNotListed counts failures beyond MaxFailures.
	FailuresNotListed int64
}

// Count is requests and failures of one bucket.
type Count struct {
	Requests int64 `json:"requests"`
	Failures int64 `json:"failures"`
}

// Failure is one failed request, with where its line is.
type Failure struct {
	Time         time.Time `json:"time"` // When: when the LB received the request
	Target       string    `json:"target"`
	ELBStatus    int       `json:"elb_status"`
	TargetStatus int       `json:"target_status,omitempty"` // 0: "-"
	ErrorReason  string    `json:"error_reason,omitempty"`
	TraceID      string    `json:"trace_id,omitempty"`
	Pos          string    `json:"at"` // file:line
	// TargetState is the target's state at Time, from a target timeline
	// (empty when none was given or it says nothing about this target then).
	TargetState  string `json:"target_state,omitempty"`
	TargetReason string `json:"target_reason,omitempty"`
}

// DefaultMaxFailures bounds the failures a Summary lists, so that a log of
// nothing but errors cannot exhaust memory; they are all counted anyway.
const DefaultMaxFailures = 1_000_000

// NewSummary returns an empty Summary.
func NewSummary() *Summary {
	return &Summary{
		Targets: map[string]*Count{}, ELBStatus: map[int]int64{}, TargetStatus: map[int]int64{},
		Minutes: map[int64]*Count{}, ErrorReasons: map[string]int64{}, MaxFailures: DefaultMaxFailures,
	}
}

// Visit counts one entry.
func (s *Summary) Visit(at Pos, e *Entry) {
	failed := e.Failed()
	when := e.When()
	s.Requests++
	if s.First.IsZero() || when.Before(s.First) {
		s.First = when
	}
	if when.After(s.Last) {
		s.Last = when
	}
	target := e.Target
	if len(target) == 0 {
		target = []byte(NoTarget)
	}
	c := s.Targets[string(target)] // no allocation for a key already there
	if c == nil {
		c = new(Count)
		s.Targets[string(target)] = c
	}
	m := s.Minutes[when.Unix()/60]
	if m == nil {
		m = new(Count)
		s.Minutes[when.Unix()/60] = m
	}
	c.Requests++
	m.Requests++
	s.ELBStatus[e.ELBStatusCode]++
	s.TargetStatus[e.TargetStatusCode]++
	if len(e.ErrorReason) > 0 {
		s.ErrorReasons[string(e.ErrorReason)]++
	}
	if !failed {
		return
	}
	s.Failures++
	c.Failures++
	m.Failures++
	if len(s.FailureList) >= s.MaxFailures {
		s.FailuresNotListed++
		return
	}
	s.FailureList = append(s.FailureList, Failure{
		Time: when, Target: string(target), ELBStatus: e.ELBStatusCode, TargetStatus: e.TargetStatusCode,
		ErrorReason: string(e.ErrorReason), TraceID: string(RootTraceID(e.TraceID)), Pos: at.String(),
	})
}

// Merge adds o's counts to s.
func (s *Summary) Merge(o *Summary) {
	s.Requests += o.Requests
	s.Failures += o.Failures
	if !o.First.IsZero() && (s.First.IsZero() || o.First.Before(s.First)) {
		s.First = o.First
	}
	if o.Last.After(s.Last) {
		s.Last = o.Last
	}
	mergeCounts(s.Targets, o.Targets)
	mergeCounts(s.Minutes, o.Minutes)
	for k, v := range o.ELBStatus {
		s.ELBStatus[k] += v
	}
	for k, v := range o.TargetStatus {
		s.TargetStatus[k] += v
	}
	for k, v := range o.ErrorReasons {
		s.ErrorReasons[k] += v
	}
	room := max(s.MaxFailures-len(s.FailureList), 0)
	take := min(room, len(o.FailureList))
	s.FailureList = append(s.FailureList, o.FailureList[:take]...)
	s.FailuresNotListed += o.FailuresNotListed + int64(len(o.FailureList)-take)
}

func mergeCounts[K comparable](dst, src map[K]*Count) {
	for k, v := range src {
		d := dst[k]
		if d == nil {
			d = new(Count)
			dst[k] = d
		}
		d.Requests += v.Requests
		d.Failures += v.Failures
	}
}

// SortFailures orders the failure list by time, then position.
func (s *Summary) SortFailures() {
	slices.SortFunc(s.FailureList, func(a, b Failure) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Pos, b.Pos)
	})
}

// JoinTargets sets each failure's TargetState from a target timeline and
// returns the failures whose target was draining at the time: requests the
// load balancer still routed to a deregistered target (DESIGN.md §1 step 4).
func (s *Summary) JoinTargets(ix *TargetIndex) []Failure {
	var draining []Failure
	for i := range s.FailureList {
		f := &s.FailureList[i]
		if st, ok := ix.At(f.Target, f.Time); ok {
			f.TargetState, f.TargetReason = st.State, st.Reason
			if st.State == "draining" {
				draining = append(draining, *f)
			}
		}
	}
	return draining
}

// TargetIndex answers "what state was target X in at time T" from
// timeline target records.
type TargetIndex struct {
	byTarget map[string][]timeline.Record
}

// NewTargetIndex indexes the target records among recs (other kinds are ignored).
func NewTargetIndex(recs []timeline.Record) *TargetIndex {
	ix := &TargetIndex{byTarget: map[string][]timeline.Record{}}
	for _, r := range recs {
		if r.Kind == timeline.KindTarget && r.Object != "" {
			ix.byTarget[r.Object] = append(ix.byTarget[r.Object], r)
		}
	}
	for _, rs := range ix.byTarget {
		slices.SortStableFunc(rs, func(a, b timeline.Record) int { return a.Time.Compare(b.Time) })
	}
	return ix
}

// Len is how many targets the index knows.
func (ix *TargetIndex) Len() int { return len(ix.byTarget) }

// Has reports whether the timeline mentions target at all.
func (ix *TargetIndex) Has(target string) bool { return len(ix.byTarget[target]) > 0 }

// At returns the last record for target at or before t.
func (ix *TargetIndex) At(target string, t time.Time) (timeline.Record, bool) {
	rs := ix.byTarget[target]
	i, _ := slices.BinarySearchFunc(rs, t, func(r timeline.Record, t time.Time) int {
		if r.Time.After(t) {
			return 1
		}
		return -1
	})
	if i == 0 {
		return timeline.Record{}, false
	}
	return rs[i-1], true
}

// RootTraceID returns the Root=... element of an X-Amzn-Trace-Id value
// ("Self=1-...;Root=1-...;x=y" → "Root=1-..."), which is what a prober
// sent and records, or the whole value when it has no Root element.
func RootTraceID(v []byte) []byte {
	i := bytes.Index(v, []byte("Root="))
	if i < 0 {
		return v
	}
	r := v[i:]
	if j := bytes.IndexByte(r, ';'); j >= 0 {
		r = r[:j]
	}
	return r
}

// Record converts an entry to a timeline request record (Source
// "accesslog", what `rollsafe logs --record` writes), so package
// attribution, run by report on that file, joins it with the prober's
// record of the same request by TraceID. Time is when the LB received the request; Latency is
// from then to the response.
func Record(at Pos, e *Entry) timeline.Record {
	r := timeline.Record{
		Kind: timeline.KindRequest, Source: "accesslog", Time: e.When(),
		Status: e.ELBStatusCode, Bytes: max(e.SentBytes, 0),
		TraceID: string(RootTraceID(e.TraceID)),
		Attrs:   map[string]string{"at": at.String()},
	}
	if !e.RequestCreationTime.IsZero() && !e.Time.IsZero() {
		r.Latency = e.Time.Sub(e.RequestCreationTime)
	}
	switch {
	case e.ELBStatusCode == 0:
		r.Class = timeline.ClassOther
	default:
		r.Class = timeline.ClassOfStatus(e.ELBStatusCode)
	}
	if len(e.Target) > 0 {
		r.Attrs["target"] = string(e.Target)
	}
	if e.TargetStatusCode != 0 {
		r.Attrs["target_status"] = strconv.Itoa(e.TargetStatusCode)
	}
	if len(e.ErrorReason) > 0 {
		r.Attrs["error_reason"] = string(e.ErrorReason)
	}
	return r
}

// Recorder is a Visitor writing every entry as a timeline record.
type Recorder struct{ W *timeline.Writer }

// Visit writes e; the Writer keeps the first error (see timeline.Writer).
func (r Recorder) Visit(at Pos, e *Entry) {
	rec := Record(at, e)
	_ = r.W.Write(&rec)
}

// Visitors fans one entry out to several visitors.
type Visitors []Visitor

// Visit calls each visitor in turn.
func (vs Visitors) Visit(at Pos, e *Entry) {
	for _, v := range vs {
		v.Visit(at, e)
	}
}
