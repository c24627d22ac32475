package probe

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rollsafe/rollsafe/timeline"
)

// Latency percentiles in milliseconds, from an HdrHistogram of microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Second is one row of the per-second series (by scheduled send time):
// one second, until the run passes MaxRows seconds. Then rows merge
// pairwise, as often as needed, so every row spans Seconds seconds (a
// power of two) from Time, and P50/P99 of a merged row are the highest of
// its parts' values (an upper bound; LatencyMS has the run's exact
// percentiles). Requests, OK, Failures and Max stay exact.
type Second struct {
	Time     time.Time                 `json:"time"`
	Seconds  int                       `json:"seconds"`
	Requests uint64                    `json:"requests"`
	OK       uint64                    `json:"ok"`
	Failures map[timeline.Class]uint64 `json:"failures,omitempty"`
	P50      float64                   `json:"p50_ms"`
	P99      float64                   `json:"p99_ms"`
	Max      float64                   `json:"max_ms"`
}

// Summary aggregates request records as they arrive (Add), so the live
// progress line and the final report come from the same numbers. It is not
// safe for concurrent use: Run calls Add from one goroutine.
//
// Latency counts every request, failed ones included, from its scheduled
// time (open model) or its send time (closed model) to the end of its body.
type Summary struct {
	Requests uint64 `json:"requests"`
	OK       uint64 `json:"ok"`
	// Answered counts the requests that got an HTTP response (any status,
	// a body that failed later included). None answered means the server
	// was never reached: the run measured nothing about a rollout.
	Answered uint64 `json:"answered"`
	// Failures has every failure class, zero or not, so readers can rely on the keys.
	Failures  map[timeline.Class]uint64 `json:"failures"`
	LatencyMS Latency                   `json:"latency_ms"`
	// Late counts sends that started more than LateAfterMS behind their
	// schedule: no worker or connection was free in time.
	Late        uint64    `json:"late"`
	LateAfterMS float64   `json:"late_after_ms"`
	MaxLateMS   float64   `json:"max_late_ms"`
	Bytes       int64     `json:"bytes"`
	Start       time.Time `json:"start"` // first send
	End         time.Time `json:"end"`   // last completion
	// TargetRate is the rate asked for (0: as fast as possible); Rate is
	// the send rate achieved between the first and the last send.
	TargetRate float64           `json:"target_rate"`
	Rate       float64           `json:"rate"`
	Replicas   map[string]uint64 `json:"replicas,omitempty"`
	Versions   map[string]uint64 `json:"versions,omitempty"`
	// Methods counts the requests by HTTP method (records that name none
	// are not counted).
	Methods map[string]uint64 `json:"methods,omitempty"`
	// IdempotentOnly is true when there were requests and every one
	// named an idempotent method (see Idempotent). A proxy that retries
	// such requests on another upstream — nginx does by default — turns a
	// failure into a success the prober never sees, while a client's POST
	// on the same path fails: the run may have hidden failures.
	IdempotentOnly bool     `json:"idempotent_only"`
	PerSecond      []Second `json:"per_second,omitempty"`
	Interrupted    bool     `json:"interrupted,omitempty"`

	idempotent uint64 // requests whose method is idempotent
	lateAfter  time.Duration
	window     int64 // seconds a per-second histogram stays open for stragglers
	lastSend   time.Time
	hist       *hdrhistogram.Histogram
	open       map[int64]*openSecond
	newest     int64
	base       int64 // the first row's second: spans count from it
	width      int64 // seconds per PerSecond row: 1, doubled by each roll-up
}

// openSecond is a second still taking records, with its own histogram.
type openSecond struct {
	row  Second
	hist *hdrhistogram.Histogram
}

// Histogram bounds: 1 µs to 1 h. Values past the top are clamped to it.
const (
	histMin = 1
	histMax = int64(time.Hour / time.Microsecond)
	// maxLabels bounds the replica and version maps: the values come from
	// the server, and a hostile or buggy one must not grow them without end.
	maxLabels   = 1000
	otherLabels = "(other)"
)

// MaxRows bounds Summary.PerSecond: an hour of one-second rows (about
// 100 B each). A longer run rolls its rows up (see Second), so a soak of
// any length keeps the same memory.
const MaxRows = 3600

// NewSummary returns an empty Summary. targetRate is reported as given;
// lateAfter is the late threshold; timeout sets how long a second's
// histogram stays open for requests still in flight (records arrive in
// completion order).
func NewSummary(targetRate float64, lateAfter, timeout time.Duration) *Summary {
	s := &Summary{
		Failures:    make(map[timeline.Class]uint64, len(timeline.FailureClasses)),
		TargetRate:  targetRate,
		lateAfter:   lateAfter,
		LateAfterMS: ms(lateAfter),
		window:      int64(timeout/time.Second) + 2,
		hist:        hdrhistogram.New(histMin, histMax, 3),
		open:        map[int64]*openSecond{},
		width:       1,
	}
	for _, c := range timeline.FailureClasses {
		s.Failures[c] = 0
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func micros(d time.Duration) int64 {
	v := int64(d / time.Microsecond)
	switch {
	case v < histMin:
		return histMin
	case v > histMax:
		return histMax
	}
	return v
}

// Add counts one record; records of other kinds are ignored.
func (s *Summary) Add(r *timeline.Record) {
	if r.Kind != timeline.KindRequest {
		return
	}
	s.Requests++
	if r.Status > 0 {
		s.Answered++
	}
	ok := r.Class == timeline.ClassOK
	if ok {
		s.OK++
	} else {
		s.Failures[r.Class]++ // an unknown class still counts, under its own name
	}
	lat := micros(r.Latency)
	_ = s.hist.RecordValue(lat) // clamped to the histogram's range: cannot fail
	s.Bytes += r.Bytes
	if s.Start.IsZero() || r.Time.Before(s.Start) {
		s.Start = r.Time
	}
	if r.Time.After(s.lastSend) {
		s.lastSend = r.Time
	}
	end := r.Time.Add(r.Latency)
	if !r.Scheduled.IsZero() {
		late := r.Time.Sub(r.Scheduled)
		if late > s.lateAfter {
			s.Late++
		}
		if m := ms(late); m > s.MaxLateMS {
			s.MaxLateMS = m
		}
		end = r.Scheduled.Add(r.Latency) // latency counts from the schedule
	}
	if end.After(s.End) {
		s.End = end
	}
	if r.Replica != "" {
		countLabel(s.ensure(&s.Replicas), r.Replica)
	}
	if r.Version != "" {
		countLabel(s.ensure(&s.Versions), r.Version)
	}
	if r.Method != "" {
		countLabel(s.ensure(&s.Methods), r.Method)
	}
	if Idempotent(r.Method) {
		s.idempotent++
	}
	s.addSecond(r, ok, lat)
}

func (s *Summary) ensure(m *map[string]uint64) map[string]uint64 {
	if *m == nil {
		*m = map[string]uint64{}
	}
	return *m
}

func countLabel(m map[string]uint64, v string) {
	if _, seen := m[v]; !seen && len(m) >= maxLabels {
		v = otherLabels
	}
	m[v]++
}

// addSecond counts r in the second it was due. A second's histogram is
// closed once records have moved window seconds past it; a straggler
// after that still counts in its row, but not in that row's percentiles.
func (s *Summary) addSecond(r *timeline.Record, ok bool, lat int64) {
	at := r.Scheduled
	if at.IsZero() {
		at = r.Time
	}
	sec := at.Unix()
	o := s.open[sec]
	switch {
	case o != nil:
	case sec >= s.newest-s.window:
		o = &openSecond{row: Second{Time: time.Unix(sec, 0).UTC(), Seconds: 1}, hist: hdrhistogram.New(histMin, histMax, 2)}
		s.open[sec] = o
	default:
		s.closedRow(sec).count(r, ok)
		return
	}
	o.row.count(r, ok)
	_ = o.hist.RecordValue(lat)
	if sec > s.newest {
		s.newest = sec
		s.closeBefore(sec - s.window)
	}
}

func (p *Second) count(r *timeline.Record, ok bool) {
	p.Requests++
	if ok {
		p.OK++
		return
	}
	if p.Failures == nil {
		p.Failures = map[timeline.Class]uint64{}
	}
	p.Failures[r.Class]++
}

// closeBefore closes the open seconds before limit, oldest first, so
// PerSecond stays sorted: every open second is later than every closed row.
func (s *Summary) closeBefore(limit int64) {
	var done []int64
	for k := range s.open {
		if k < limit {
			done = append(done, k)
		}
	}
	slices.Sort(done)
	for _, k := range done {
		s.closeSecond(k)
	}
}

func (s *Summary) closeSecond(sec int64) {
	o := s.open[sec]
	delete(s.open, sec)
	o.row.P50 = usToMS(o.hist.ValueAtQuantile(50))
	o.row.P99 = usToMS(o.hist.ValueAtQuantile(99))
	o.row.Max = usToMS(o.hist.Max())
	s.appendRow(o.row)
}

// appendRow adds a closed row after the others, folding it into the last
// row when both fall in one span of s.width seconds.
func (s *Summary) appendRow(p Second) {
	if len(s.PerSecond) == 0 {
		s.base = p.Time.Unix()
	}
	if n := len(s.PerSecond); n > 0 && s.span(s.PerSecond[n-1].Time.Unix()) == s.span(p.Time.Unix()) {
		s.PerSecond[n-1].merge(p)
		return
	}
	p.Time, p.Seconds = s.spanStart(p.Time.Unix()), int(s.width)
	s.PerSecond = append(s.PerSecond, p)
	if len(s.PerSecond) > MaxRows {
		s.rollUp()
	}
}

// span numbers the s.width-second spans from the first row's second.
func (s *Summary) span(sec int64) int64 {
	d := sec - s.base
	if d < 0 { // a straggler before the first row: floor, not truncation
		return (d - s.width + 1) / s.width
	}
	return d / s.width
}

func (s *Summary) spanStart(sec int64) time.Time {
	return time.Unix(s.base+s.span(sec)*s.width, 0).UTC()
}

// rollUp doubles the row width and merges the rows pairwise, so PerSecond
// never holds more than MaxRows rows however long the run.
func (s *Summary) rollUp() {
	s.width *= 2
	rows := s.PerSecond
	s.PerSecond = rows[:0:0]
	for _, p := range rows {
		s.appendRow(p)
	}
}

// merge folds q into p: counts add up, Max is exact, and P50/P99 become
// the higher of the two (the rows' histograms are gone: an upper bound).
func (p *Second) merge(q Second) {
	p.Requests += q.Requests
	p.OK += q.OK
	for c, n := range q.Failures {
		if p.Failures == nil {
			p.Failures = map[timeline.Class]uint64{}
		}
		p.Failures[c] += n
	}
	p.P50, p.P99, p.Max = max(p.P50, q.P50), max(p.P99, q.P99), max(p.Max, q.Max)
}

// closedRow is the row a straggler's second belongs to; a second with no
// row yet (nothing else was due then) gets one in its sorted place.
func (s *Summary) closedRow(sec int64) *Second {
	k := s.span(sec)
	i, found := slices.BinarySearchFunc(s.PerSecond, k, func(p Second, k int64) int {
		return cmp.Compare(s.span(p.Time.Unix()), k)
	})
	if !found {
		s.PerSecond = slices.Insert(s.PerSecond, i, Second{Time: s.spanStart(sec), Seconds: int(s.width)})
		if len(s.PerSecond) > MaxRows {
			s.rollUp()
			return s.closedRow(sec)
		}
	}
	return &s.PerSecond[i]
}

func usToMS(v int64) float64 { return float64(v) / 1000 }

// Percentiles returns the latency percentiles so far.
func (s *Summary) Percentiles() Latency {
	if s.hist.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  usToMS(s.hist.ValueAtQuantile(50)),
		P90:  usToMS(s.hist.ValueAtQuantile(90)),
		P99:  usToMS(s.hist.ValueAtQuantile(99)),
		P999: usToMS(s.hist.ValueAtQuantile(99.9)),
		Max:  usToMS(s.hist.Max()),
	}
}

// Failed is the number of failed requests so far.
func (s *Summary) Failed() uint64 { return s.Requests - s.OK }

// Close computes the final numbers. Add must not be called after it.
func (s *Summary) Close() {
	s.closeBefore(math.MaxInt64)
	s.LatencyMS = s.Percentiles()
	s.IdempotentOnly = s.Requests > 0 && s.idempotent == s.Requests
	if span := s.lastSend.Sub(s.Start); s.Requests > 1 && span > 0 {
		s.Rate = float64(s.Requests-1) / span.Seconds()
	}
}

// Idempotent reports whether method is one RFC 9110 (section 9.2.2)
// defines as idempotent: GET, HEAD, OPTIONS, TRACE, PUT, DELETE. Method
// names are case-sensitive; an unknown or empty one is not idempotent.
// nginx's proxy_next_upstream retries all but POST, LOCK and PATCH once a
// request reached an upstream, so every method here is one it retries.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// HiddenRetries is the one sentence every renderer shows for an
// IdempotentOnly run, naming the methods sent; "" for any other run.
func (s *Summary) HiddenRetries() string {
	if !s.IdempotentOnly {
		return ""
	}
	methods := slices.Sorted(maps.Keys(s.Methods))
	for i, m := range methods {
		methods[i] = fmt.Sprintf("%s %d", m, s.Methods[m])
	}
	return "every request was idempotent (" + strings.Join(methods, ", ") + "): a proxy that retries those on another " +
		"upstream (nginx does by default) may have hidden failures a POST would get; probe with -X POST too"
}
