package alb

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// Target is a registered IP target ("ip" target type).
type Target struct {
	IP   string
	Port int
}

func (t Target) String() string { return net.JoinHostPort(t.IP, strconv.Itoa(t.Port)) }

// State is a target's health state, spelled as the ELBv2 API spells it.
type State string

const (
	StateInitial   State = "initial"
	StateHealthy   State = "healthy"
	StateUnhealthy State = "unhealthy"
	StateDraining  State = "draining"
	StateUnused    State = "unused"
)

// Reason codes, as the ELBv2 API reports them in TargetHealth.Reason.
const (
	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
)

// reasonDescription gives the API's Description for a reason code.
var reasonDescription = map[string]string{
	ReasonRegistrationInProgress:   "Target registration is in progress",
	ReasonInitialHealthChecking:    "Initial health checks in progress",
	ReasonResponseCodeMismatch:     "Health checks failed with these codes: [%d]",
	ReasonTimeout:                  "Request timed out",
	ReasonFailedHealthChecks:       "Health checks failed",
	ReasonNotRegistered:            "Target is not registered to the target group",
	ReasonDeregistrationInProgress: "Target deregistration is in progress",
}

// ReasonDescription is the API's Description for a reason code (empty for
// an unknown one). Package nlb shares it. Target.ResponseCodeMismatch's
// has a %d verb for the status code.
func ReasonDescription(reason string) string { return reasonDescription[reason] }

// TargetHealth is one target's state as the ELBv2 API reports it, and as
// the proxy routes by.
type TargetHealth struct {
	Target          Target
	State           State
	Reason          string // empty when healthy
	Description     string
	HealthCheckPort int
}

// health values stored in target.health (atomic, read on the hot path).
const (
	hInitial int32 = iota
	hHealthy
	hUnhealthy
)

var healthState = [...]State{hInitial: StateInitial, hHealthy: StateHealthy, hUnhealthy: StateUnhealthy}

var healthCode = map[State]int32{StateInitial: hInitial, StateHealthy: hHealthy, StateUnhealthy: hUnhealthy}

// target is the LB's record of one registered target. Fields read by the
// proxy are atomics; the rest is guarded by LB.mu.
type target struct {
	addr Target
	key  string // "ip:port"

	// health is what health checks concluded; it is frozen while draining,
	// because a node that has not yet learned of the deregistration still
	// routes by it.
	health   atomic.Int32
	draining atomic.Bool
	// cut is set when the deregistration delay elapsed: every connection
	// is closed and failures on them are cuts, not target errors.
	cut atomic.Bool

	pool pool

	// guarded by LB.mu
	reason     string
	lastCode   int // last mismatching health-check status, for Description
	runs       HealthRuns
	gen        uint64        // bumped at every (re)registration and deregistration
	stopHC     chan struct{} // closed to stop this registration's health checker
	drainTimer *time.Timer
}

// state returns the API state; call with LB.mu held or accept a racy but
// consistent-enough read (both fields are atomics).
func (t *target) state() State {
	if t.draining.Load() {
		return StateDraining
	}
	return healthState[t.health.Load()]
}

func (t *target) describe(hcPort int) TargetHealth {
	th := TargetHealth{Target: t.addr, State: t.state(), Reason: t.reason, HealthCheckPort: hcPort}
	if d, ok := reasonDescription[t.reason]; ok {
		if t.reason == ReasonResponseCodeMismatch {
			d = fmt.Sprintf(d, t.lastCode)
		}
		th.Description = d
	}
	return th
}
