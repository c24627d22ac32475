// Package timeline holds the one record type that every part of rollsafe
// speaks: a request sent by the prober, a pod state change seen by the
// cluster, a target state change seen by the load balancer, a marker from a
// rollout. Probe, observe, lab, soak and report read and write the same
// NDJSON stream of Records, so none of them needs glue to talk to another.
package timeline

import (
	"time"
)

// Kind says what a Record describes.
type Kind string

const (
	KindRequest Kind = "request" // one HTTP request sent by a prober
	KindPod     Kind = "pod"     // a pod state change
	KindTarget  Kind = "target"  // a load-balancer target state change
	KindRollout Kind = "rollout" // a rollout started, progressed or finished
	KindEvent   Kind = "event"   // anything else worth a mark: a signal, a kill, a scenario boundary
	// KindTruth is the lab's ground truth for one failed request (Source
	// "lab"): its Cause, joined to the request by TraceID. Only the lab can
	// write one. Package attribution never reads it as evidence: it only
	// compares its own causes with it (Agreement), which report and the
	// lab show.
	KindTruth Kind = "truth"
)

// Record is one thing that happened at one time. Fields that do not apply
// to a Kind stay empty and are left out of the JSON.
type Record struct {
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"` // when it happened; for a request, when it was actually sent
	// Source names who recorded it: probe, lab, kube, elbv2, accesslog, soak.
	Source   string `json:"source,omitempty"`
	Scenario string `json:"scenario,omitempty"` // lab scenario or soak run the record belongs to

	// Requests.
	Seq       uint64        `json:"seq,omitempty"`
	Method    string        `json:"method,omitempty"`     // the HTTP method sent: a proxy may retry an idempotent one elsewhere
	Scheduled time.Time     `json:"scheduled,omitzero"`   // when the open-model schedule wanted it sent
	Latency   time.Duration `json:"latency_ns,omitempty"` // from Scheduled (or Time if unscheduled) to the end of the body
	Status    int           `json:"status,omitempty"`
	Class     Class         `json:"class,omitempty"` // ok or a failure class
	Bytes     int64         `json:"bytes,omitempty"`
	Replica   string        `json:"replica,omitempty"` // which backend answered (X-Served-By)
	Version   string        `json:"version,omitempty"` // the version the answer carried
	Error     string        `json:"error,omitempty"`
	// TraceID is the X-Amzn-Trace-Id the prober sent ("Root=1-<8 hex>-<24 hex>").
	// The ALB (and the lab's stand-in) writes it into its access log, so a
	// request record joins its access-log line exactly.
	TraceID string `json:"trace_id,omitempty"`

	// Pods, targets, rollouts, events.
	Object string `json:"object,omitempty"` // pod name, target "ip:port", deployment name
	State  string `json:"state,omitempty"`  // pod: Pending/Running/Ready/Terminating/Exited; target: initial/healthy/unhealthy/draining/unused
	Reason string `json:"reason,omitempty"`

	// Cause is why a failed request failed, on a KindTruth record: the
	// lab's ground truth. Request records leave it empty; package
	// attribution gives its causes in its Result, not on records.
	Cause Cause `json:"cause,omitempty"`
	// Attrs holds further facts (pod IP, exit code, target group) as strings.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Failed reports whether the record is a request that did not succeed.
func (r *Record) Failed() bool { return r.Kind == KindRequest && r.Class != ClassOK }
