package kubelet

// State is what changed, as written to timeline.Record.State for Kind pod
// and passed to Options.OnStatus. The names are part of the timeline
// contract that report reads: never rename one.
type State string

const (
	StatePending            State = "Pending"            // pod accepted, process not started yet
	StateRunning            State = "Running"            // main process started (Attrs pid)
	StateContainersReady    State = "ContainersReady"    // readiness probe passed (or no probe)
	StateContainersNotReady State = "ContainersNotReady" // readiness probe failed or process gone
	StateReady              State = "Ready"              // ContainersReady and every readiness gate True
	StateNotReady           State = "NotReady"           // Ready condition went False
	StateCondition          State = "Condition"          // a readiness-gate condition was set (Attrs condition, status)
	StateExited             State = "Exited"             // main process exited (Attrs exit_code)
	StateBackOff            State = "BackOff"            // waiting to restart a crashed container (Attrs restart_in)
	StateSucceeded          State = "Succeeded"          // terminal phase: restartPolicy says no restart, exit 0
	StateFailed             State = "Failed"             // terminal phase: restartPolicy says no restart, exit != 0
	StateTerminating        State = "Terminating"        // deletion started (Attrs deletion_time, grace)
	StatePreStop            State = "PreStop"            // preStop hook started (Reason: sleep, exec, httpGet)
	StatePreStopDone        State = "PreStopDone"        // preStop hook ended or was abandoned at the deadline
	StateSIGTERM            State = "SIGTERM"            // SIGTERM sent to the main process
	StateKilled             State = "Killed"             // SIGKILL sent to the process group
	StateDeleted            State = "Deleted"            // termination finished: the pod object is gone
	StateWarning            State = "Warning"            // something in the spec the lab cannot honour (Reason says what)
)
