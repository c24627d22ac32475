package check

import "github.com/rollsafe/rollsafe/workload"

// assumedNote is appended to every finding of a workload judged as served
// without a Service.
func assumedNote(w *workload.Workload) string {
	if w.AssumedPort == "" {
		return ""
	}
	return "; no Service in the input selects it; judged as served because it declares port " + w.AssumedPort
}

// unserved reports, when Services are in the input and none selects the
// workload, that the load-balancer rules were skipped and why.
func unserved(c *run, w *workload.Workload) {
	if w.Served() || w.InputServices == 0 {
		return
	}
	c.report(w, Info, nil, w.Object.Line("spec", "template", "metadata", "labels"), "", nil,
		"none of the Services in the input (%d) selects the pods of %s, so the load-balancer rules (readiness gate, probe, preStop, deregistration delay, idle timeout, replicas, PDB) were skipped; if a Service elsewhere routes to it, check it together with that Service",
		w.InputServices, w.Ref)
}
