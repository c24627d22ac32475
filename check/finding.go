// Package check judges a workload's whole zero-downtime chain from its
// manifests: readiness gate prerequisites, probes, rollout strategy, PDB,
// preStop, grace period, and the load balancer's deregistration delay,
// idle timeout and health checks, compared with each other.
//
// The shape follows kube-score: package workload indexes the objects once
// and resolves them into Workloads (the numbers that matter, defaults applied);
// every rule is one entry in the Rules list and returns Findings as data;
// each output format is one renderer; the exit decision is Failed.
package check

import (
	"fmt"
	"strings"
)

// Severity orders findings; --fail-on picks the threshold.
type Severity int

const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes the severity as its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseSeverity reads "info", "warning" or "error".
func ParseSeverity(v string) (Severity, error) {
	for _, s := range []Severity{Info, Warning, Error} {
		if strings.EqualFold(v, s.String()) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want info, warning or error", v)
}

// Finding is one broken link of the chain, with the fix.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Object is the object to change, as Kind/namespace/name.
	Object string `json:"object"`
	// Workload groups findings: the Deployment or StatefulSet they concern.
	Workload string `json:"workload"`
	Message  string `json:"message"`
	Fix      string `json:"fix"`
	// Patches are Fix in a form a program can apply: applying the patches
	// of every finding of one run gives manifests with no error finding
	// (fixes compose). A fix that only text can express (change the app's
	// code, set an AWS attribute no manifest holds) has none.
	Patches []Patch `json:"patches,omitempty"`
	File    string  `json:"file,omitempty"`
	Line    int     `json:"line,omitempty"`
}

// Patch types.
const (
	// PatchStrategic is a Kubernetes strategic-merge patch for Object
	// (`kubectl patch --type strategic`): containers merge by name.
	PatchStrategic = "strategic"
	// PatchCreate is a whole new object (`kubectl apply`), such as a
	// PodDisruptionBudget or a Namespace missing from the input.
	PatchCreate = "create"
)

// Patch is one machine-applicable change.
type Patch struct {
	// Object is the object to patch or create, as Kind/namespace/name.
	Object string `json:"object"`
	Type   string `json:"type"`
	// Patch is the strategic-merge patch, or the object to create.
	Patch map[string]any `json:"patch"`
}

// Failed says whether any finding is at or above the threshold: the one
// place the exit code is decided from.
func Failed(fs []Finding, threshold Severity) bool {
	for _, f := range fs {
		if f.Severity >= threshold {
			return true
		}
	}
	return false
}
