package probe

import (
	"sort"
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

// Second is one second of the run (by scheduled send time).
type Second struct {
	Time     time.Time                 `json:"time"`
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
	TargetRate  float64           `json:"target_rate"`
	Rate        float64           `json:"rate"`
	Replicas    map[string]uint64 `json:"replicas,omitempty"`
	Versions    map[string]uint64 `json:"versions,omitempty"`
	PerSecond   []Second          `json:"per_second,omitempty"`
	Interrupted bool              `json:"interrupted,omitempty"`

	lateAfter time.Duration
	window    int64 // seconds a per-second histogram stays open for stragglers
	lastSend  time.Time
	hist      *hdrhistogram.Histogram
	open      map[int64]*openSecond
	rowOf     map[int64]int
	newest    int64
}

type openSecond struct {
	row  int
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
		rowOf:       map[int64]int{},
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
// after that still counts, but not in that second's percentiles.
func (s *Summary) addSecond(r *timeline.Record, ok bool, lat int64) {
	at := r.Scheduled
	if at.IsZero() {
		at = r.Time
	}
	sec := at.Unix()
	row, seen := s.rowOf[sec]
	if !seen {
		row = len(s.PerSecond)
		s.rowOf[sec] = row
		s.PerSecond = append(s.PerSecond, Second{Time: time.Unix(sec, 0).UTC()})
		s.open[sec] = &openSecond{row: row, hist: hdrhistogram.New(histMin, histMax, 2)}
	}
	p := &s.PerSecond[row]
	p.Requests++
	if ok {
		p.OK++
	} else {
		if p.Failures == nil {
			p.Failures = map[timeline.Class]uint64{}
		}
		p.Failures[r.Class]++
	}
	if o := s.open[sec]; o != nil {
		_ = o.hist.RecordValue(lat)
	}
	if sec > s.newest {
		s.newest = sec
		for k := range s.open {
			if k < sec-s.window {
				s.closeSecond(k)
			}
		}
	}
}

func (s *Summary) closeSecond(sec int64) {
	o := s.open[sec]
	p := &s.PerSecond[o.row]
	p.P50 = usToMS(o.hist.ValueAtQuantile(50))
	p.P99 = usToMS(o.hist.ValueAtQuantile(99))
	p.Max = usToMS(o.hist.Max())
	delete(s.open, sec)
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
	for k := range s.open {
		s.closeSecond(k)
	}
	sort.Slice(s.PerSecond, func(i, j int) bool { return s.PerSecond[i].Time.Before(s.PerSecond[j].Time) })
	s.LatencyMS = s.Percentiles()
	if span := s.lastSend.Sub(s.Start); s.Requests > 1 && span > 0 {
		s.Rate = float64(s.Requests-1) / span.Seconds()
	}
}
