package attribution

import (
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// Confidence says how firmly the evidence supports a cause.
type Confidence string

const (
	// Certain: every fact the cause rests on lies outside its uncertainty window.
	Certain Confidence = "certain"
	// Likely: a fact lies inside an uncertainty window (between two polls,
	// an exit recorded just after the request), or the target was inferred
	// without an access-log line.
	Likely Confidence = "likely"
	// Unknown: the evidence at hand does not say why.
	Unknown Confidence = "unknown"
)

// Evidence is one fact of a chain: a record, where it came from, and what it says.
type Evidence struct {
	// Time is on the prober's clock: an access-log time has the estimated
	// skew taken out (What gives the logged time).
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // probe, kube, elbv2, accesslog
	What   string    `json:"what"`
	// At is the file:line of an access-log entry, when known.
	At string `json:"at,omitempty"`
}

// Failure is one failed request with its attributed cause.
type Failure struct {
	Scenario string         `json:"scenario,omitempty"`
	Source   string         `json:"source,omitempty"`
	Seq      uint64         `json:"seq,omitempty"`
	Time     time.Time      `json:"time"` // when the prober sent it
	Class    timeline.Class `json:"class"`
	Status   int            `json:"status,omitempty"`
	Error    string         `json:"error,omitempty"`
	TraceID  string         `json:"trace_id,omitempty"`
	// Target is the ip:port the load balancer chose (from the access log),
	// or the one inferred; Pod is the pod that held its IP then.
	Target     string         `json:"target,omitempty"`
	Pod        string         `json:"pod,omitempty"`
	Cause      timeline.Cause `json:"cause"`
	Confidence Confidence     `json:"confidence"`
	// Reason says why the confidence is what it is; Settle, when not
	// certain, what extra evidence would settle it.
	Reason   string     `json:"reason"`
	Settle   string     `json:"settle,omitempty"`
	Evidence []Evidence `json:"evidence"`
	// Truth is the lab's ground truth, when the records carry it.
	Truth timeline.Cause `json:"truth,omitempty"`
}

// CauseCount is how many failures were attributed to a cause, and how firmly.
type CauseCount struct {
	Cause   timeline.Cause `json:"cause"`
	Count   uint64         `json:"count"`
	Certain uint64         `json:"certain"`
	Likely  uint64         `json:"likely"`
	Explanation
}

// TargetPropagation is how long the load balancer kept sending new requests
// to one target after it was deregistered.
type TargetPropagation struct {
	Target string `json:"target"`
	Pod    string `json:"pod,omitempty"`
	// DeregisteredAfter and DeregisteredBy bound the deregistration: the
	// last poll that saw the target in service and the first that saw it
	// draining.
	DeregisteredAfter time.Time `json:"deregistered_after"`
	DeregisteredBy    time.Time `json:"deregistered_by"`
	// LastRouted is the last request the load balancer sent the target after
	// DeregisteredAfter; Via says how it is known: "accesslog" (the ALB's
	// own line, clock skew taken out) or "replica" (the last answer carrying
	// the pod's name in the replica header).
	LastRouted time.Time `json:"last_routed"`
	Via        string    `json:"via"`
	// Seconds is the best estimate of the propagation delay; MinSeconds and
	// MaxSeconds the bounds the polls allow.
	Seconds    float64 `json:"seconds"`
	MinSeconds float64 `json:"min_seconds"`
	MaxSeconds float64 `json:"max_seconds"`
	// LowerBound is set when the true delay may be longer: only answers
	// were seen (no access log) and the app stopped answering when it
	// exited, or the pod was deleted while the load balancer still routed
	// to it, so requests hung on the connect timeout and held the client
	// connections that would have carried later ones.
	LowerBound bool `json:"lower_bound,omitempty"`
	// Note says why, when LowerBound is set.
	Note string `json:"note,omitempty"`
}

// Propagation is P measured on this load balancer.
type Propagation struct {
	Targets []TargetPropagation `json:"targets"`
	// MaxSeconds and P95Seconds are over the targets' estimates;
	// MaxUpperSeconds is the largest bound, the safe figure to plan with.
	MaxSeconds      float64 `json:"max_seconds"`
	P95Seconds      float64 `json:"p95_seconds"`
	MaxUpperSeconds float64 `json:"max_upper_seconds"`
	// ControllerLagSeconds is the AWS Load Balancer Controller's lag from a
	// pod turning Terminating to its target turning draining, as the
	// evidence bounds it (the largest upper bound over targets).
	ControllerLagSeconds float64 `json:"controller_lag_seconds"`
	// Implied is what the figures mean for the settings.
	Implied Implied `json:"implied"`
}

// Implied are the settings the measured figures call for, by check's
// arithmetic: preStop ≥ controller lag + P, plus a margin.
type Implied struct {
	PropagationSeconds   float64 `json:"propagation_seconds"`
	ControllerLagSeconds float64 `json:"controller_lag_seconds"`
	MarginSeconds        float64 `json:"margin_seconds"`
	MinPreStopSeconds    float64 `json:"min_prestop_seconds"`
	// TimeScale, when the records came from a lab run with time shrunk,
	// is the factor; the seconds above are then in spec time (divided by it).
	TimeScale float64 `json:"time_scale,omitempty"`
	// Command is the `rollsafe check` to run with these figures.
	Command string `json:"command"`
}

// Join says how the access log and the request records joined.
type Join struct {
	// AccessLogEntries is how many access-log entries this run got.
	AccessLogEntries uint64 `json:"access_log_entries"`
	// FailedJoined is how many failed requests found their access-log line
	// by trace id. Successful requests are joined on a sample — a run's
	// first 4096, then one in 32 by the trace id's random bits: Sampled is
	// how many were in it, and SampledJoined how many of those found their
	// line.
	FailedJoined  uint64 `json:"failed_joined"`
	Sampled       uint64 `json:"sampled"`
	SampledJoined uint64 `json:"sampled_joined"`
	// ClockSkewMS is the access log's clock minus the probe host's, as
	// estimated from joined requests (median), taken out of access-log times.
	ClockSkewMS float64 `json:"clock_skew_ms"`
	// Note says what did not join, when something did not.
	Note string `json:"note,omitempty"`
}

// Agreement compares the attribution with the lab's ground truth.
type Agreement struct {
	Compared uint64  `json:"compared"`
	Agree    uint64  `json:"agree"`
	Ratio    float64 `json:"ratio"`
	// WronglyCertain counts failures called certain whose cause differs from the truth.
	WronglyCertain uint64 `json:"wrongly_certain"`
}

// Run is the attribution of one scenario or run (the records' Scenario).
type Run struct {
	Scenario string `json:"scenario"`
	Rollouts int    `json:"rollouts"`
	Requests uint64 `json:"requests"`
	Failed   uint64 `json:"failed"`
	// Sources lists the evidence present: probe, kube, elbv2, accesslog.
	Sources  []string     `json:"sources"`
	Headline string       `json:"headline"`
	Causes   []CauseCount `json:"causes"`
	Failures []Failure    `json:"failures"`
	// Missing says what an absent source would have added.
	Missing     []string     `json:"missing,omitempty"`
	Propagation *Propagation `json:"propagation,omitempty"`
	Join        Join         `json:"join"`
	Agreement   *Agreement   `json:"agreement,omitempty"`
}

// Result is the attribution of every run in the input, in order of first record.
type Result struct {
	Runs []*Run `json:"runs"`
}
