package lab

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// probes are the traffic streams of one scenario.
type probes struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (p *probes) wait() error {
	p.wg.Wait()
	if len(p.errs) > 0 {
		return p.errs[0]
	}
	return nil
}

// run runs one probe; its error (a failing sink) is kept for wait.
func (p *probes) run(ctx context.Context, cfg probe.Config, sink timeline.Sink) error {
	_, err := probe.Run(ctx, cfg, sink)
	if err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
	return err
}

// startProbes starts the constant load on / and, when the scenario asks
// for it, a side stream of long /slow requests.
func (r *run) startProbes(ctx context.Context) *probes {
	lbTimeout := r.lbf.targetTimeout
	timeout := max(5*time.Second, lbTimeout+time.Second)
	r.summary = probe.NewSummary(r.o.Rate, 10*time.Millisecond, timeout)
	ps := &probes{}
	// The prober closes idle connections before the ALB stand-in does, as
	// probe's default (half the ALB's 60 s) does on AWS: at the lab's time
	// scale the stand-in's idle timeout is shrunk too (lbFacts.probeIdle).
	idle := r.lbf.probeIdle
	streams := []probe.Config{{
		URL: r.lb.URL() + "/", Rate: r.o.Rate, Connections: 32, Timeout: timeout, IdleConnTimeout: idle,
	}}
	if r.hop != nil {
		streams = r.hopProbes(timeout)
	}
	if r.s.SlowRequest > 0 {
		slow := r.scale.Of(r.s.SlowRequest)
		streams = append(streams, probe.Config{
			URL:  fmt.Sprintf("%s/slow?ms=%d", r.lb.URL(), slow.Milliseconds()),
			Rate: 4, Connections: 64, Timeout: slow + lbTimeout + time.Second, IdleConnTimeout: idle,
		})
	}
	if r.s.BurstEvery > 0 {
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			r.bursts(ctx, ps, timeout)
		}()
	}
	for _, cfg := range streams {
		cfg.VersionHeader, cfg.Source, cfg.Scenario = "X-Version", "probe", r.s.Name
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			ps.run(ctx, cfg, r.onProbeRecord)
		}()
	}
	return ps
}

// burstSize is how many requests one burst sends at once.
const burstSize = 24

// bursts sends a burst of burstSize concurrent requests every BurstEvery
// until ctx ends or a burst's recording fails.
func (r *run) bursts(ctx context.Context, ps *probes, timeout time.Duration) {
	every := r.scale.Of(r.s.BurstEvery)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		var wg sync.WaitGroup
		failed := make(chan struct{}, 2)
		for _, cfg := range r.burstStreams(timeout) {
			cfg.VersionHeader, cfg.Source, cfg.Scenario = "X-Version", "probe", r.s.Name
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ps.run(ctx, cfg, r.onProbeRecord) != nil {
					failed <- struct{}{}
				}
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			return
		}
	}
}

// burstStreams is one burst: GETs of / on the prober's keep-alive, or,
// through the nginx hop, half GETs and half POSTs of the hop's streams, so
// that nginx's retries of the one and not the other show in the counts.
func (r *run) burstStreams(timeout time.Duration) []probe.Config {
	if r.hop == nil {
		return []probe.Config{{URL: r.lb.URL() + "/", Connections: burstSize, Requests: burstSize, Timeout: timeout,
			IdleConnTimeout: r.lbf.probeIdle}}
	}
	streams := r.hopProbes(timeout)
	for i := range streams {
		streams[i].Rate, streams[i].Connections, streams[i].Requests = 0, burstSize/len(streams), burstSize/uint64(len(streams))
	}
	return streams
}

// onProbeRecord aggregates every request; failed ones wait for attribution
// until the ALB's view of them is complete.
func (r *run) onProbeRecord(rec *timeline.Record) error {
	r.mu.Lock()
	r.summary.Add(rec)
	if rec.Failed() {
		c := *rec
		r.failed = append(r.failed, &c)
		rec = nil
	}
	r.mu.Unlock()
	if rec != nil {
		return r.emit(rec)
	}
	return nil
}

// onRequest is the ALB's per-request hook: it counts fail-open routing and
// keeps what the ALB knew of failed requests, by trace id.
func (r *run) onRequest(ri *alb.RequestInfo) {
	failed := ri.Err != alb.ErrNone || ri.ELBStatus >= 500
	if !ri.FailOpen && !failed {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ri.FailOpen {
		r.failOpen++
	}
	if failed && ri.TraceID != "" {
		r.failInfo[ri.TraceID] = *ri
	}
}

// attributeFailures joins each failed request with the ALB's view and the
// pod's process history into its ground-truth cause, and emits the request
// record as the prober saw it (evidence: no Cause) followed by a KindTruth
// record (Source lab) carrying the cause, joined to it by TraceID.
//
// It runs once the ALB is closed, so every RequestInfo is in.
func (r *run) attributeFailures() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var byFlow map[*timeline.Record]*flowEnd
	if r.nlb != nil && r.hop == nil {
		byFlow = r.flowCauses(r.failed)
	}
	for _, rec := range r.failed {
		truth := &timeline.Record{Kind: timeline.KindTruth, Source: "lab", Time: rec.Time,
			TraceID: rec.TraceID, Seq: rec.Seq, Cause: timeline.CauseUnknown}
		if r.hop != nil {
			truth.Cause, truth.Attrs = r.hopCause(rec)
		} else if ri, ok := r.failInfo[rec.TraceID]; ok {
			truth.Cause = r.causeOf(&ri)
			truth.Attrs = map[string]string{"target": ri.Target, "target_state": string(ri.TargetState), "lb_error": string(ri.Err)}
			if ri.Peer != ri.Target {
				truth.Attrs["pod"] = ri.Peer
			}
		} else if f := byFlow[rec]; f != nil {
			truth.Cause = r.flowCause(rec, f)
			truth.Attrs = map[string]string{"target": f.target, "pod": f.peer, "flow_end": f.end}
		}
		// r.failed is the run's own copy: it keeps the truth for
		// Result.Causes; the record that leaves carries none.
		rec.Cause = truth.Cause
		ev := *rec
		ev.Cause = ""
		r.emit(&ev)
		r.emit(truth)
	}
}

const reapSlack = 100 * time.Millisecond

// causeOf refines the ALB's preliminary cause with what only the cluster
// knows: whether the target's process had exited, was killed mid-request,
// or its pod had been deleted (a connect timeout: its IP had left the network).
func (r *run) causeOf(ri *alb.RequestInfo) timeline.Cause {
	if r.nodes != nil {
		return r.instanceCause(ri)
	}
	ip, _, _ := splitTarget(ri.Target)
	f, known := r.procs.facts(ip)
	if !known || ri.Cause == timeline.CauseNoHealthyTarget || ri.Cause == timeline.CauseNoRegisteredTarget {
		return ri.Cause
	}
	killedDuring, gone, deleted := f.during(ri.Sent, requestDone(ri))
	switch {
	case killedDuring:
		return timeline.CauseKilledByGrace
	case ri.Err == alb.ErrConnectTimeout && deleted && ri.TargetState == alb.StateDraining:
		return timeline.CauseDrainingTargetGone
	case ri.Err == alb.ErrConnectTimeout && deleted && !f.terminating.IsZero():
		// Still in service: the pod was deleted (and its IP gone) before
		// the controller deregistered its target.
		return timeline.CauseExitedBeforeDeregistration
	case ri.Cause == timeline.CauseDeregistrationCut || ri.Cause == timeline.CauseTargetTimeout:
		return ri.Cause
	case gone && ri.TargetState == alb.StateDraining:
		return timeline.CauseDrainingTargetExited
	case gone && !f.terminating.IsZero():
		return timeline.CauseExitedBeforeDeregistration
	case !gone && ri.Reused && ri.Err == alb.ErrReusedConnClosed:
		// The process was alive: the app closed the idle connection itself.
		return timeline.CauseKeepAliveRace
	case !gone && ri.TargetState == alb.StateDraining:
		return timeline.CauseUnknown
	}
	return ri.Cause
}

// requestDone is when the ALB finished with ri (now, if it has not).
func requestDone(ri *alb.RequestInfo) time.Time {
	if ri.Done.IsZero() {
		return time.Now()
	}
	return ri.Done
}

// during says what happened to the pod while a request sent at sent was
// out, up to end: SIGKILL came (killed), its process had exited (gone;
// the kubelet sees an exit when it reaps the process, a moment after the
// process stopped answering: reapSlack allows for that), its pod was
// deleted (deleted: its IP had left the network, IPReleaseDelay after the
// deletion, when a connect went unanswered).
func (f podFacts) during(sent, end time.Time) (killed, gone, deleted bool) {
	killed = !f.killed.IsZero() && !sent.IsZero() && !sent.After(f.killed) && !end.Before(f.killed)
	gone = !f.exited.IsZero() && !f.exited.After(end.Add(reapSlack))
	deleted = !f.deleted.IsZero() && !f.deleted.After(end)
	return killed, gone, deleted
}

// instanceCause is causeOf behind kube-proxy: the target is a node, always
// in service, and the pod is the one the connection reached (Peer). A new
// connection to a pod already exited or deleted is the node's stale
// endpoint; a request on a connection whose pod exited under it, the pin
// kube-proxy never moves.
func (r *run) instanceCause(ri *alb.RequestInfo) timeline.Cause {
	if ri.Cause == timeline.CauseNoRegisteredTarget || ri.Cause == timeline.CauseNoHealthyTarget {
		return ri.Cause
	}
	ip, _, _ := splitTarget(ri.Peer)
	f, known := r.procs.facts(ip)
	if !known || r.nodes.isNode(ri.Peer) {
		return ri.Cause // the node itself refused or dropped it: no endpoint
	}
	end := requestDone(ri)
	killedDuring, gone, deleted := f.during(ri.Sent, end)
	newConn := ri.Err == alb.ErrDialRefused || ri.Err == alb.ErrConnectTimeout || ri.Err == alb.ErrDial
	switch {
	case killedDuring:
		return timeline.CauseKilledByGrace
	case newConn && (gone || deleted):
		return timeline.CauseStaleEndpoint
	case ri.Cause == timeline.CauseDeregistrationCut || ri.Cause == timeline.CauseTargetTimeout:
		return ri.Cause
	case gone || (!f.killed.IsZero() && !f.killed.After(end)):
		return timeline.CausePinnedConnectionReset
	case ri.Reused && ri.Err == alb.ErrReusedConnClosed:
		return timeline.CauseKeepAliveRace // the app, alive, closed the idle connection
	}
	return ri.Cause
}

// result totals the scenario.
func (r *run) result() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.summary.Close()
	res := &Result{
		Scenario: r.s, Name: r.s.Name, Settings: r.s.KeySettings(), Rollouts: r.o.Rollouts,
		Requests: r.summary.Requests, OK: r.summary.OK, Failures: r.summary.Failures,
		Causes: map[timeline.Cause]uint64{}, LatencyMS: r.summary.Percentiles(),
		FailOpen: r.failOpen, Killed: r.killed, Seconds: time.Since(r.began).Seconds(),
	}
	for _, rec := range r.failed {
		res.Causes[rec.Cause]++
	}
	if r.hop != nil {
		c := r.hop.counts
		res.Nginx = &c
	}
	return res
}
