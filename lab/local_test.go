package lab_test

import (
	"testing"

	"github.com/rollsafe/rollsafe/timeline"
)

// The Local pair (check's instance stop window with externalTrafficPolicy
// Local). With a 20 s preStop the graceful app fails readiness at SIGTERM,
// so the node whose only pod it is has no serving local endpoint and drops
// new connections while the Classic ELB still sends them, until its health
// check (6 × 10 s) takes the node out: 504s after the connect timeout,
// which the lab names target_timeout (the node, the target, did not
// answer). With check's 68 s preStop the ELB has taken the node out first:
// nothing is lost over 5 rollouts.
func TestCLBLocalPreStop(t *testing.T) {
	short := playOn(t, "clb-local-prestop-short", "clb", "", 2, topoScale)
	if short.Failed() == 0 {
		t.Errorf("clb-local-prestop-short lost nothing: no node kept routing to a terminating pod past its preStop")
	}
	expectCauses(t, short, []timeline.Cause{timeline.CauseTargetTimeout})
	expectNoLoss(t, playOn(t, "clb-local-prestop", "clb", "", 5, topoScale))
}
