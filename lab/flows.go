package lab

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/nlb"
	"github.com/rollsafe/rollsafe/timeline"
)

// flowMatchWindow bounds how far apart a failed request's end and its
// connection's end may be for the two to be joined (real time). An NLB
// does not read HTTP, so no trace id joins them: a failed request is the
// one in flight on a connection when it ended, and both ends are seen
// within milliseconds of each other.
const flowMatchWindow = 250 * time.Millisecond

// flowEnd is one NLB connection as its ground-truth records tell it.
type flowEnd struct {
	opened, closed time.Time
	client         string // the client's ip:port, as the NLB accepted it
	target, peer   string
	end            string
	draining       bool
	failOpen       bool
	used           bool
}

// flows keeps the NLB stand-in's connection records for the ground truth.
type flows struct {
	mu     sync.Mutex
	opened map[string]time.Time // by flow number
	ended  []*flowEnd
}

// observe takes one NLB record (Kind event, Source lab).
func (fs *flows) observe(rec *timeline.Record) {
	if rec.Kind != timeline.KindEvent || rec.Source != "lab" {
		return
	}
	id := rec.Attrs["flow"]
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch rec.Reason {
	case nlb.ReasonFlowOpened:
		if fs.opened == nil {
			fs.opened = map[string]time.Time{}
		}
		fs.opened[id] = rec.Time
	case nlb.ReasonFlowClosed:
		if !failingEnd(rec.Attrs["end"]) {
			delete(fs.opened, id)
			return
		}
		peer := rec.Attrs["peer"]
		if peer == "" {
			peer = rec.Object
		}
		fs.ended = append(fs.ended, &flowEnd{opened: fs.opened[id], closed: rec.Time, client: rec.Attrs["client"], target: rec.Object, peer: peer,
			end: rec.Attrs["end"], draining: rec.Attrs["target_state"] == string(alb.StateDraining),
			failOpen: rec.Attrs["fail_open"] == "true"})
		delete(fs.opened, id)
	}
}

// failingEnd: an end that can fail a request in flight. The client's own
// close, and the lab's teardown, cannot.
func failingEnd(end string) bool {
	switch end {
	case nlb.EndClientClosed, nlb.EndClientReset, nlb.EndClosed, "":
		return false
	}
	return true
}

// match returns the connection that carried a failed request, and marks it
// used (nil: none). The probe's error names its end of the connection
// ("read tcp 127.0.0.1:40412->…"), which is the client the NLB accepted:
// then the flow is the one from that client open while the request was
// out. Errors without an address (an EOF) fall back to the unused flow
// whose end is nearest to the request's, within flowMatchWindow.
func (fs *flows) match(rec *timeline.Record) *flowEnd {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	client, end := clientOf(rec.Error), requestEnd(rec)
	var best *flowEnd
	bestD := time.Duration(math.MaxInt64)
	for _, f := range fs.ended {
		d := f.closed.Sub(end)
		if d < 0 {
			d = -d
		}
		fits := d <= flowMatchWindow
		if client != "" {
			fits = f.client == client && !f.closed.Before(rec.Time) && (f.opened.IsZero() || !f.opened.After(end))
		}
		if !f.used && fits && d < bestD {
			best, bestD = f, d
		}
	}
	if best != nil {
		best.used = true
	}
	return best
}

// clientOf is the local address in a Go network error ("read tcp
// 127.0.0.1:40412->127.0.0.1:8080: …"), or "".
func clientOf(msg string) string {
	i := strings.Index(msg, "tcp ")
	if i < 0 {
		return ""
	}
	rest := msg[i+len("tcp "):]
	j := strings.Index(rest, "->")
	if j <= 0 || strings.ContainsAny(rest[:j], " ") {
		return ""
	}
	return rest[:j]
}

// flowCauses attributes the failed requests of an NLB run, earliest end
// first, each to the connection that ended with it.
func (r *run) flowCauses(failed []*timeline.Record) map[*timeline.Record]*flowEnd {
	sorted := append([]*timeline.Record(nil), failed...)
	sort.Slice(sorted, func(i, j int) bool { return requestEnd(sorted[i]).Before(requestEnd(sorted[j])) })
	out := map[*timeline.Record]*flowEnd{}
	// Joined by address first, so the time join of the rest picks among
	// the flows no address claimed.
	slices.SortStableFunc(sorted, func(a, b *timeline.Record) int {
		return cmp.Compare(b2i(clientOf(a.Error) == ""), b2i(clientOf(b.Error) == ""))
	})
	for _, rec := range sorted {
		if f := r.flows.match(rec); f != nil {
			out[rec] = f
		}
	}
	return out
}

// requestEnd is when a request ended: its latency counts from its
// schedule, or from its send when it had none.
func requestEnd(rec *timeline.Record) time.Time {
	start := rec.Scheduled
	if start.IsZero() {
		start = rec.Time
	}
	return start.Add(rec.Latency)
}

// flowCause is the ground-truth cause of a request that failed with
// connection f: a new connection (opened while the request was out) to a
// pod already exited or deleted is the NLB's late deregistration (ip) or a
// node's stale endpoint (instance); a request on an older connection whose
// pod exited is the pinned connection.
func (r *run) flowCause(rec *timeline.Record, f *flowEnd) timeline.Cause {
	switch {
	case f.end == nlb.EndNoTarget:
		return timeline.CauseNoRegisteredTarget
	case f.failOpen:
		return timeline.CauseNoHealthyTarget
	}
	ip, _, _ := splitTarget(f.peer)
	facts, known := r.procs.facts(ip)
	if !known {
		return timeline.CauseUnknown
	}
	end := f.closed
	killedDuring, gone, deleted := facts.during(rec.Time, end)
	newConn := !f.opened.IsZero() && !f.opened.Before(rec.Time.Add(-reapSlack))
	switch {
	case killedDuring:
		return timeline.CauseKilledByGrace
	case newConn && (gone || deleted) && r.nodes != nil:
		return timeline.CauseStaleEndpoint
	case newConn && deleted && f.draining:
		return timeline.CauseDrainingTargetGone
	case newConn && gone && f.draining:
		return timeline.CauseDrainingTargetExited
	case newConn && (gone || deleted) && !facts.terminating.IsZero():
		return timeline.CauseExitedBeforeDeregistration
	case gone || (!facts.killed.IsZero() && !facts.killed.After(end)):
		return timeline.CausePinnedConnectionReset
	case !newConn && (f.end == nlb.EndTargetClosed || f.end == nlb.EndTargetReset):
		return timeline.CauseKeepAliveRace // the app, alive, closed it
	}
	return timeline.CauseUnknown
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
