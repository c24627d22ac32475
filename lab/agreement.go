package lab

import (
	"bufio"
	"bytes"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/attribution"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/observe/elbv2"
	"github.com/rollsafe/rollsafe/timeline"
)

// Evidence is what the attribution concluded from the evidence alone — the
// probe's records, pod states as the Kubernetes API showed them, target
// health polled through the ELBv2 API, the access log — and how often it
// agrees with the lab's ground truth.
type Evidence struct {
	Headline  string                    `json:"headline"`
	Causes    map[timeline.Cause]uint64 `json:"causes"`
	Agreement attribution.Agreement     `json:"agreement"`
	// PropagationSeconds is P as measured from the evidence (max over the
	// drained targets, real seconds); ConfiguredSeconds is the P the ALB
	// stand-in ran with (scaled). Zero when no target was drained.
	PropagationSeconds float64 `json:"propagation_seconds"`
	ConfiguredSeconds  float64 `json:"configured_propagation_seconds"`
	// Propagation is the whole measurement, per target.
	Propagation *attribution.Propagation `json:"propagation,omitempty"`
}

// attributeEvidence runs the attribution on the run's evidence and compares
// it with the ground truth. Call it after stop: the evidence is complete.
func (r *run) attributeEvidence() (*Evidence, error) {
	recs, log := r.evidenceSet()
	if r.topo.LB == LBCLB {
		// A Classic ELB is not an ELBv2 load balancer (no
		// DescribeTargetHealth), and its access log names no trace id:
		// a user has the probe and the Kubernetes API, nothing more.
		recs, log = withoutELBv2(recs), nil
	}
	opts := attribution.Options{ExitSlack: podViewDelay}
	if r.o.Kube != nil {
		// The pod view is a real API server's watch of the node agent's
		// status patches, as on a cluster: report's own slack.
		opts.ExitSlack = 0
	}
	an := attribution.New(opts)
	an.Add(r.scenarioMark())
	for _, rec := range recs {
		if err := an.Add(rec); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	for _, rec := range r.failed {
		an.Add(&timeline.Record{Kind: timeline.KindTruth, Source: "lab", Time: rec.Time, Scenario: rec.Scenario,
			TraceID: rec.TraceID, Cause: rec.Cause})
	}
	r.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var e accesslog.Entry
		if err := e.Parse(sc.Bytes()); err != nil {
			return nil, err // the stand-in wrote a line its own parser refuses: a bug to see
		}
		an.AddAccessLog(accesslog.Pos{File: "access log", Line: line}, &e)
	}
	res := an.Result()
	ev := &Evidence{Causes: map[timeline.Cause]uint64{}, ConfiguredSeconds: r.scale.Of(r.s.Propagation).Seconds()}
	for _, run := range res.Runs {
		if run.Scenario != r.s.Name {
			continue
		}
		ev.Headline = run.Headline
		for _, c := range run.Causes {
			ev.Causes[c.Cause] = c.Count
		}
		if run.Agreement != nil {
			ev.Agreement = *run.Agreement
		}
		if p := run.Propagation; p != nil {
			ev.Propagation, ev.PropagationSeconds = p, p.MaxSeconds
		}
	}
	return ev, nil
}

// podViewDelay bounds how much later than a process's exit the embedded
// lab's pod records show it (attribution.Options.ExitSlack): the kubelet
// stand-in reaps its processes at once and the pod view records in the same call,
// where a real kubelet's relist and the watch take a good part of a second
// (the attribution's default slack).
const podViewDelay = 50 * time.Millisecond

// withoutELBv2 is recs less the target-health polls.
func withoutELBv2(recs []*timeline.Record) []*timeline.Record {
	var out []*timeline.Record
	for _, rec := range recs {
		if rec.Source != elbv2.Source {
			out = append(out, rec)
		}
	}
	return out
}

// scenarioMark is the record that tells a reader of the timeline which
// scenario starts, at what time scale (package attribution, in report
// and here, turns the settings it implies back into spec time with it)
// and with which target type (what a user knows of their own load
// balancer: the pods or the nodes are its targets).
func (r *run) scenarioMark() *timeline.Record {
	tt := attribution.TargetTypeIP
	if topo, err := LookupTopology(r.s.Topology); err == nil && topo.Instance {
		tt = attribution.TargetTypeInstance
	} else if err == nil && topo.Ingress {
		tt = attribution.TargetTypeIngress
	}
	return &timeline.Record{Kind: timeline.KindEvent, Time: r.began, Source: "lab", Scenario: r.s.Name,
		Object: r.s.Name, Reason: "scenario", State: "started",
		Attrs: map[string]string{"time_scale": strconv.FormatFloat(r.o.TimeScale, 'g', -1, 64), "propagation": r.s.Propagation.String(),
			"target_type": tt}}
}
