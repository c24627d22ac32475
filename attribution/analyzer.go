package attribution

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options tune an Analyzer. Zero values take the defaults.
type Options struct {
	// ExitSlack is how much later than a failed request's end its pod's exit
	// may be recorded and still count as "already exited": the kubelet
	// reports an exit when it reaps the process, and a watch delivers it a
	// moment later. Default 250 ms.
	ExitSlack time.Duration
	// Margin is added to controller lag + P for the implied preStop
	// (default 2 s, the rounding of check's whole-second settings plus one).
	Margin time.Duration
	// CheckPath is the manifests path printed in the implied check command
	// (default "deploy/").
	CheckPath string
}

func (o Options) withDefaults() Options {
	if o.ExitSlack <= 0 {
		o.ExitSlack = 250 * time.Millisecond
	}
	if o.Margin <= 0 {
		o.Margin = 2 * time.Second
	}
	if o.CheckPath == "" {
		o.CheckPath = "deploy/"
	}
	return o
}

// Analyzer gathers evidence and attributes. Feed it records with Add and
// access logs with AddAccessLog or ScanAccessLogs — request records before
// access logs, so log lines join as they arrive — then call Result.
type Analyzer struct {
	opts  Options
	runs  map[string]*runData
	order []string
	// byTrace finds a request by the trace id it sent.
	byTrace    map[traceKey]reqRef
	byTraceStr map[string]reqRef // trace ids that are not Root=1-8hex-24hex
	// pending holds access-log entries that joined no request, until Result
	// assigns them to a run by target.
	pending *logPart
	// timeScale is the lab's, when a scenario record says it.
	timeScale float64
}

type reqRef struct {
	run  int32 // index into order
	fail int32 // index into the run's fails, -1 for a success
	sent int64 // unix ns, probe clock
}

// New returns an empty Analyzer.
func New(o Options) *Analyzer {
	return &Analyzer{opts: o.withDefaults(), runs: map[string]*runData{},
		byTrace: map[traceKey]reqRef{}, byTraceStr: map[string]reqRef{}, pending: newLogPart()}
}

func (a *Analyzer) run(name string) (*runData, int32) {
	r, ok := a.runs[name]
	if !ok {
		r = newRunData(name, int32(len(a.order)))
		a.runs[name] = r
		a.order = append(a.order, name)
	}
	return r, r.idx
}

// Add takes one timeline record. Records with Source lab are ground truth
// and are ignored as evidence, except KindTruth (kept for Agreement) and
// the lab's scenario marks (rollout counts, time scale).
func (a *Analyzer) Add(rec *timeline.Record) error {
	if rec.Time.IsZero() {
		return fmt.Errorf("record has no \"time\"")
	}
	r, idx := a.run(rec.Scenario)
	switch rec.Kind {
	case timeline.KindTruth:
		r.truth[traceOf(rec.TraceID)] = rec.Cause
	case timeline.KindRequest:
		if rec.Source == "accesslog" {
			return a.addLogRecord(rec)
		}
		if rec.Source == "lab" {
			return nil
		}
		return a.addRequest(r, idx, rec)
	case timeline.KindPod:
		if rec.Source == "kube" {
			r.sources["kube"] = true
			r.pod(rec)
		}
	case timeline.KindTarget:
		if rec.Source == "elbv2" {
			r.sources["elbv2"] = true
			r.target(rec)
		}
	case timeline.KindRollout:
		switch {
		case rec.Source == "lab" && rec.State == "started":
			r.rollouts++
		case rec.Source == "kube" && rec.Attrs["resource"] == "deployment" && rec.Attrs["revision"] != "":
			r.revisions[rec.Object+"/"+rec.Attrs["revision"]] = true
		}
	case timeline.KindEvent:
		if rec.Source == "lab" && rec.Reason == "scenario" {
			if s := rec.Attrs["time_scale"]; s != "" {
				fmt.Sscan(s, &a.timeScale)
			}
		}
	}
	return nil
}

func (a *Analyzer) addRequest(r *runData, idx int32, rec *timeline.Record) error {
	if rec.Class == "" {
		return fmt.Errorf("request record has no \"class\"")
	}
	r.sources["probe"] = true
	r.requests++
	ref := reqRef{run: idx, fail: -1, sent: rec.Time.UnixNano()}
	if rec.Failed() {
		ref.fail = int32(len(r.fails))
		r.fails = append(r.fails, failReq{
			Failure: Failure{Scenario: rec.Scenario, Source: rec.Source, Seq: rec.Seq, Time: rec.Time, Class: rec.Class,
				Status: rec.Status, Error: rec.Error, TraceID: rec.TraceID},
			sent: ref.sent, end: ref.sent + int64(rec.Latency),
		})
	} else if rec.Replica != "" {
		r.answers[rec.Replica] = append(r.answers[rec.Replica], ref.sent)
	}
	r.span(ref.sent)
	if rec.TraceID != "" {
		if k, ok := parseTrace(rec.TraceID); ok {
			// Every failure is indexed, and of the successes the first
			// joinAll and then one in joinSample (by the trace id's
			// random bits): enough to estimate the clock skew and tell
			// logs that join from logs that do not, without a
			// million-entry map that costs more than the rest of the
			// report.
			if ref.fail >= 0 || r.sampled < joinAll || k.sampled() {
				a.byTrace[k] = ref
				r.sampled += b2u(ref.fail < 0)
			}
		} else {
			a.byTraceStr[rec.TraceID] = ref
			r.sampled += b2u(ref.fail < 0)
		}
	}
	return nil
}

// Successful requests joined to their access-log line: the first joinAll
// of a run, then one in joinSample.
const (
	joinAll    = 4096
	joinSample = 32
)

func (k traceKey) sampled() bool { return k[4]%joinSample == 0 }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// addLogRecord takes an access-log entry that `rollsafe logs --record`
// turned into a timeline record.
func (a *Analyzer) addLogRecord(rec *timeline.Record) error {
	e := logEntry{created: rec.Time.UnixNano(), elb: int16(rec.Status), target: rec.Attrs["target"],
		at: rec.Attrs["at"], errorReason: rec.Attrs["error_reason"]}
	e.done = e.created + int64(rec.Latency)
	fmt.Sscan(rec.Attrs["target_status"], &e.targetStatus)
	a.addEntry(a.pending, rec.TraceID, e)
	return nil
}

// AddAccessLog takes one access-log entry (single-threaded; see ScanAccessLogs).
func (a *Analyzer) AddAccessLog(at accesslog.Pos, e *accesslog.Entry) {
	a.addEntry(a.pending, string(accesslog.RootTraceID(e.TraceID)), entryOf(at, e))
}

// ScanAccessLogs reads access logs (files, dirs, .gz, s3://) with
// accesslog.Scan, in parallel, and takes every entry.
func (a *Analyzer) ScanAccessLogs(ctx context.Context, inputs []string, opts accesslog.Options) (accesslog.Stats, error) {
	var mu sync.Mutex
	var parts []*logPart
	stats, err := accesslog.Scan(ctx, inputs, opts, func() accesslog.Visitor {
		v := &logVisitor{a: a, part: newLogPart()}
		mu.Lock()
		parts = append(parts, v.part)
		mu.Unlock()
		return v
	})
	for _, p := range parts {
		a.pending.merge(p)
	}
	return stats, err
}

type logVisitor struct {
	a    *Analyzer
	part *logPart
}

func (v *logVisitor) Visit(at accesslog.Pos, e *accesslog.Entry) {
	v.a.addEntry(v.part, string(accesslog.RootTraceID(e.TraceID)), entryOf(at, e))
}

func entryOf(at accesslog.Pos, e *accesslog.Entry) logEntry {
	le := logEntry{created: e.When().UnixNano(), done: e.Time.UnixNano(), elb: int16(e.ELBStatusCode),
		targetStatus: e.TargetStatusCode, answered: e.TargetProcessingTime >= 0}
	if len(e.Target) > 0 {
		le.target = string(e.Target)
	}
	if e.Failed() || e.ELBStatusCode >= 500 {
		le.at = at.String()
		le.errorReason = string(e.ErrorReason)
	}
	return le
}

// addEntry joins e to its request by trace id, or keeps it for Result. It
// only reads the Analyzer's request index, so parse workers may call it
// concurrently, each on its own part.
func (a *Analyzer) addEntry(p *logPart, trace string, e logEntry) {
	var ref reqRef
	ok := false
	if k, parsed := parseTrace(trace); parsed {
		ref, ok = a.byTrace[k]
	} else if trace != "" {
		ref, ok = a.byTraceStr[trace]
	}
	if !ok {
		p.add(-1, -1, e)
		return
	}
	p.skew = append(p.skew, e.created-ref.sent)
	p.add(ref.run, ref.fail, e)
}

// logEntry is what attribution keeps of an access-log line.
type logEntry struct {
	created, done int64 // unix ns, AWS clock
	elb           int16
	targetStatus  int
	answered      bool // target_processing_time is not -1
	target        string
	at            string // file:line, kept for failures only
	errorReason   string
}

// logPart is one parse worker's share of the access log.
type logPart struct {
	entries   uint64
	skew      []int64               // created - sent of joined requests
	byRun     map[int32]*runLog     // joined entries, by run
	unjoined  map[string][]int64    // created times (ALB clock) of entries that joined no request, by target
	unjFailed map[string][]logEntry // failed unjoined entries, by target
	failed    []logEntry            // failed unjoined entries with no target
}

type runLog struct {
	entries  uint64
	joined   uint64
	byTarget map[string][]int64
	fails    map[int32]logEntry // by the run's failure index
}

func newLogPart() *logPart {
	return &logPart{byRun: map[int32]*runLog{}, unjoined: map[string][]int64{}, unjFailed: map[string][]logEntry{}}
}

func (p *logPart) runLog(run int32) *runLog {
	rl := p.byRun[run]
	if rl == nil {
		rl = &runLog{byTarget: map[string][]int64{}, fails: map[int32]logEntry{}}
		p.byRun[run] = rl
	}
	return rl
}

func (p *logPart) add(run, fail int32, e logEntry) {
	p.entries++
	if run < 0 {
		if e.target != "" {
			p.unjoined[e.target] = append(p.unjoined[e.target], e.created)
			if e.elb >= 500 {
				p.unjFailed[e.target] = append(p.unjFailed[e.target], e)
			}
		}
		return
	}
	rl := p.runLog(run)
	rl.entries++
	rl.joined++
	if e.target != "" {
		rl.byTarget[e.target] = append(rl.byTarget[e.target], e.created)
	}
	if fail >= 0 {
		rl.fails[fail] = e
	}
}

func (p *logPart) merge(o *logPart) {
	p.entries += o.entries
	p.skew = append(p.skew, o.skew...)
	for run, ol := range o.byRun {
		rl := p.runLog(run)
		rl.entries += ol.entries
		rl.joined += ol.joined
		for t, ts := range ol.byTarget {
			rl.byTarget[t] = append(rl.byTarget[t], ts...)
		}
		for i, e := range ol.fails {
			rl.fails[i] = e
		}
	}
	for t, ts := range o.unjoined {
		p.unjoined[t] = append(p.unjoined[t], ts...)
	}
	for t, es := range o.unjFailed {
		p.unjFailed[t] = append(p.unjFailed[t], es...)
	}
}

// traceKey is the 96 random bits and the epoch of a Root=1-xxxxxxxx-yyyy… trace id.
type traceKey [16]byte

func parseTrace(s string) (traceKey, bool) {
	var k traceKey
	s = strings.TrimPrefix(s, "Root=")
	if len(s) != 35 || s[0] != '1' || s[1] != '-' || s[10] != '-' {
		return k, false
	}
	if _, err := hex.Decode(k[:4], []byte(s[2:10])); err != nil {
		return k, false
	}
	if _, err := hex.Decode(k[4:], []byte(s[11:])); err != nil {
		return k, false
	}
	return k, true
}

// traceOf is a map key for truth records (a string, since truth is small).
func traceOf(s string) string { return strings.TrimPrefix(s, "Root=") }
