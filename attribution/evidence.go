package attribution

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// runData is the evidence of one run.
type runData struct {
	name      string
	idx       int32
	sources   map[string]bool
	rollouts  int             // the lab's rollout marks
	revisions map[string]bool // deployment/revision pairs the API showed
	requests  uint64
	sampled   uint64 // successful requests indexed for the join (1 in joinSample)
	first     int64  // the first and the last request's send time (unix ns)
	last      int64
	fails     []failReq
	// answers are the send times of successful requests, by replica.
	answers map[string][]int64
	pods    map[string]*podHist // by name
	targets map[string]*targetHist
	truth   map[string]timeline.Cause // by trace id without "Root="
	log     *runLog                   // joined and assigned access-log entries (nil: none)
}

type failReq struct {
	Failure
	sent, end int64 // unix ns, probe clock
}

func newRunData(name string, idx int32) *runData {
	return &runData{name: name, idx: idx, sources: map[string]bool{}, answers: map[string][]int64{}, revisions: map[string]bool{},
		pods: map[string]*podHist{}, targets: map[string]*targetHist{}, truth: map[string]timeline.Cause{}}
}

// podHist is one pod as the Kubernetes API showed it. Times are unix ns of
// the first record showing each fact; 0 means never seen.
type podHist struct {
	name        string
	ip          string
	first       int64
	ready       int64 // the pod's Ready condition (with gates, after the target is healthy)
	serving     int64 // a container ready: its readiness probe passed, so the app listens
	terminating int64
	exited      int64  // a container terminated, or the pod ended
	exitedHow   string // "terminated:Error:137" as observe/kube writes it
	deleted     int64
}

func (r *runData) pod(rec *timeline.Record) {
	p := r.pods[rec.Object]
	t := rec.Time.UnixNano()
	if p == nil {
		p = &podHist{name: rec.Object, first: t}
		r.pods[rec.Object] = p
	}
	if ip := rec.Attrs["ip"]; ip != "" {
		p.ip = ip
	}
	first := func(dst *int64) {
		if *dst == 0 {
			*dst = t
		}
	}
	switch rec.State {
	case "Ready":
		first(&p.ready)
	case "Terminating":
		first(&p.terminating)
	case "Exited":
		first(&p.exited)
	case "Deleted":
		first(&p.deleted)
		first(&p.terminating)
		first(&p.exited)
	}
	for k, v := range rec.Attrs {
		if !strings.HasPrefix(k, "container/") {
			continue
		}
		switch {
		case strings.HasPrefix(v, "terminated:") && p.exited == 0:
			p.exited, p.exitedHow = t, v
		case strings.HasPrefix(v, "running+ready"):
			first(&p.serving)
		}
	}
	if rec.Attrs["deletion_timestamp"] != "" {
		first(&p.terminating)
	}
}

// killed reports whether the container was killed by a signal 9 (exit
// code 137), which during a termination is the grace period's SIGKILL.
func (p *podHist) killed() bool { return strings.HasSuffix(p.exitedHow, ":137") }

// podAt is the pod that held ip at t: the newest one first seen by then,
// or up to a second later (a watch may deliver a new pod after its first
// request).
func (r *runData) podAt(ip string, t int64) *podHist {
	var best *podHist
	for _, p := range r.pods {
		if p.ip != ip || p.first > t+int64(time.Second) {
			continue
		}
		if best == nil || p.first > best.first {
			best = p
		}
	}
	return best
}

// targetHist is one target's polled states.
type targetHist struct {
	key     string
	changes []tchange
}

// tchange is one change seen by a poll at `at`; the previous poll, at
// `prev` (0 if this was the first), still saw the old state.
type tchange struct {
	at, prev int64
	state    string
	reason   string
}

func (r *runData) target(rec *timeline.Record) {
	th := r.targets[rec.Object]
	if th == nil {
		th = &targetHist{key: rec.Object}
		r.targets[rec.Object] = th
	}
	c := tchange{at: rec.Time.UnixNano(), state: rec.State, reason: rec.Reason}
	if s := rec.Attrs["prev_poll"]; s != "" {
		if pt, err := time.Parse(time.RFC3339Nano, s); err == nil {
			c.prev = pt.UnixNano()
		}
	}
	th.changes = append(th.changes, c)
}

func (r *runData) sortEvidence() {
	for _, th := range r.targets {
		slices.SortStableFunc(th.changes, func(a, b tchange) int { return cmp.Compare(a.at, b.at) })
	}
	for _, ts := range r.answers {
		slices.Sort(ts)
	}
}

// stateAt is the target's polled state at t: the state of the last change
// seen at or before t, and whether t falls inside the window of the next
// change (after its previous poll), where the new state may already hold.
// ok is false before the target's first record.
func (th *targetHist) stateAt(t int64) (state string, next string, ambiguous, ok bool) {
	i, _ := slices.BinarySearchFunc(th.changes, t, func(c tchange, t int64) int {
		if c.at <= t {
			return -1
		}
		return 1
	})
	if i < len(th.changes) {
		nc := th.changes[i]
		if nc.prev != 0 && nc.prev < t {
			next, ambiguous = nc.state, true
		} else if nc.prev == 0 && i == 0 {
			// First seen after t with no earlier poll: it may have existed.
			next, ambiguous = nc.state, true
		}
	}
	if i == 0 {
		return "", next, ambiguous, false
	}
	return th.changes[i-1].state, next, ambiguous, true
}

// drain is the first deregistration window of a target: after lo (the last
// poll that saw it in service) and by hi (the first that saw it draining).
// before is the state it had before; until is when a poll first saw it
// leave draining (unused, or registered again), 0 if none did.
func (th *targetHist) drain() (lo, hi, until int64, before string, ok bool) {
	for i, c := range th.changes {
		if c.state != "draining" {
			continue
		}
		lo = c.prev
		if i > 0 {
			before = th.changes[i-1].state
			lo = max(lo, th.changes[i-1].at)
		}
		if lo == 0 {
			lo = c.at
		}
		if i+1 < len(th.changes) {
			until = th.changes[i+1].at
		}
		return lo, c.at, until, before, true
	}
	return 0, 0, 0, "", false
}

// ipOf is the IP of an "ip:port" target.
func ipOf(target string) string {
	h, _, err := net.SplitHostPort(target)
	if err != nil {
		return target
	}
	return h
}

func fmtTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("15:04:05.000")
}

// secs prints a duration the way a reader wants it: ms below a second.
func secs(ns int64) string {
	if ns < int64(time.Second) {
		return strconv.FormatFloat(float64(ns)/1e6, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 2, 64) + " s"
}

func unixUTC(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// rolloutCount is the lab's rollout marks, else the Deployment revisions
// the API showed beyond the first of each Deployment.
func (r *runData) rolloutCount() int {
	if r.rollouts > 0 {
		return r.rollouts
	}
	deployments := map[string]bool{}
	for k := range r.revisions {
		deployments[k[:strings.LastIndexByte(k, '/')]] = true
	}
	return len(r.revisions) - len(deployments)
}

func (r *runData) span(t int64) {
	if r.first == 0 || t < r.first {
		r.first = t
	}
	r.last = max(r.last, t)
}

// podHeld reports whether any pod held ip.
func (r *runData) podHeld(ip string) bool {
	for _, p := range r.pods {
		if p.ip == ip {
			return true
		}
	}
	return false
}

// knows reports whether the run's evidence mentions target (a polled
// target, or a pod that held its IP).
func (r *runData) knows(target string) bool {
	if _, ok := r.targets[target]; ok {
		return true
	}
	return r.podHeld(ipOf(target))
}
