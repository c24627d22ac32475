package attribution

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/observe/accesslog"
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
	// (default defaults.Margin, what check --recommend adds).
	Margin time.Duration
	// TargetType is the load balancer's target type, TargetTypeIP,
	// TargetTypeInstance (a Classic ELB's is instance) or TargetTypeIngress
	// (an ingress controller's pods). Empty: the lab's
	// scenario mark says it, else instance when no polled target is a
	// pod's IP, else ip.
	TargetType string
	// ProxyLag bounds how long a node's kube-proxy may still send new
	// connections to an endpoint after it turned terminating (instance
	// targets). Default twice kube-proxy's minimum sync period, at the
	// lab's time scale.
	ProxyLag time.Duration
	// CheckPath is the manifests path printed in the implied check command
	// (default "deploy/").
	CheckPath string
}

func (o Options) withDefaults() Options {
	if o.ExitSlack <= 0 {
		o.ExitSlack = 250 * time.Millisecond
	}
	if o.Margin <= 0 {
		o.Margin = defaults.Margin
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
	// timeScale is the lab's, when a scenario record says it; targetType
	// the load balancer's, likewise.
	timeScale  float64
	targetType string
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
			if tt := rec.Attrs["target_type"]; tt != "" {
				a.targetType = tt
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
	p := a.pending
	ref, ok := a.lookup([]byte(rec.TraceID))
	if !ok {
		p.entries++
		if e.target != "" {
			p.unjoinedAt([]byte(e.target), e.created)
		}
		return nil
	}
	p.skew = append(p.skew, e.created-ref.sent)
	p.add(ref.run, ref.fail, e)
	return nil
}

// AddAccessLog takes one access-log entry (single-threaded; see ScanAccessLogs).
func (a *Analyzer) AddAccessLog(at accesslog.Pos, e *accesslog.Entry) {
	a.addEntry(a.pending, at, e)
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

func (v *logVisitor) Visit(at accesslog.Pos, e *accesslog.Entry) { v.a.addEntry(v.part, at, e) }

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

// addEntry joins e to its request by trace id, or keeps its target and time
// for Result. It only reads the Analyzer's request index, so parse workers
// may call it concurrently, each on its own part. An entry that joins no
// request costs no allocation: it is most of a big log.
func (a *Analyzer) addEntry(p *logPart, at accesslog.Pos, e *accesslog.Entry) {
	ref, ok := a.lookup(accesslog.RootTraceID(e.TraceID))
	if !ok {
		p.entries++
		if len(e.Target) > 0 {
			p.unjoinedAt(e.Target, e.When().UnixNano())
		}
		return
	}
	le := entryOf(at, e)
	p.skew = append(p.skew, le.created-ref.sent)
	p.add(ref.run, ref.fail, le)
}

func (a *Analyzer) lookup(trace []byte) (reqRef, bool) {
	if k, parsed := parseTrace(trace); parsed {
		ref, ok := a.byTrace[k]
		return ref, ok
	}
	ref, ok := a.byTraceStr[string(trace)]
	return ref, ok && len(trace) > 0
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
	entries  uint64
	skew     []int64           // created - sent of joined requests
	byRun    map[int32]*runLog // joined entries, by run
	unjoined map[string]*[]int64
	// unjoined: created times (ALB clock) of entries that joined no
	// request, by target
}

type runLog struct {
	entries  uint64
	joined   uint64
	byTarget map[string][]int64
	fails    map[int32]logEntry // by the run's failure index
}

func newLogPart() *logPart {
	return &logPart{byRun: map[int32]*runLog{}, unjoined: map[string]*[]int64{}}
}

func (p *logPart) runLog(run int32) *runLog {
	rl := p.byRun[run]
	if rl == nil {
		rl = &runLog{byTarget: map[string][]int64{}, fails: map[int32]logEntry{}}
		p.byRun[run] = rl
	}
	return rl
}

// unjoinedAt keeps the time of an entry that joined no request. The map
// is looked up with the line's bytes (no allocation); a target's key is
// allocated once.
func (p *logPart) unjoinedAt(target []byte, created int64) {
	if ts, ok := p.unjoined[string(target)]; ok {
		*ts = append(*ts, created)
		return
	}
	p.unjoined[string(target)] = &[]int64{created}
}

// add keeps an entry that joined request fail (-1: a success) of run.
func (p *logPart) add(run, fail int32, e logEntry) {
	p.entries++
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
		if mine, ok := p.unjoined[t]; ok {
			*mine = append(*mine, *ts...)
		} else {
			p.unjoined[t] = ts
		}
	}
}

// traceKey is the 96 random bits and the epoch of a Root=1-xxxxxxxx-yyyy… trace id.
type traceKey [16]byte

func parseTrace[T string | []byte](s T) (traceKey, bool) {
	var k traceKey
	if len(s) == 40 && string(s[:5]) == "Root=" {
		s = s[5:]
	}
	if len(s) != 35 || s[0] != '1' || s[1] != '-' || s[10] != '-' {
		return k, false
	}
	if !unhex(k[:4], s[2:10]) || !unhex(k[4:], s[11:]) {
		return k, false
	}
	return k, true
}

func unhex[T string | []byte](dst []byte, s T) bool {
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// traceOf is a map key for truth records (a string, since truth is small).
func traceOf(s string) string { return strings.TrimPrefix(s, "Root=") }
