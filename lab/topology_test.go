package lab_test

import (
	"context"
	"testing"

	"github.com/rollsafe/rollsafe/lab"
)

// playOn plays the built-in scenario name on topology topo.
func playOn(t *testing.T, name, topo string, rollouts int, scale float64) *lab.Result {
	t.Helper()
	ss, err := lab.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := lab.LookupTopology(topo)
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0].On(tp)
	res, err := lab.Run(context.Background(), s, lab.Options{TimeScale: scale, Rollouts: rollouts, Rate: 200, App: []string{demoBin}})
	if err != nil {
		t.Fatalf("%s on %s: %v", name, topo, err)
	}
	t.Logf("%s on %s [%s]: %d requests, %d failed, classes %v, causes %v, killed %d, %.1fs",
		name, topo, res.Settings, res.Requests, res.Failed(), nonZero(res.Failures), res.Causes, res.Killed, res.Seconds)
	if ev := res.Evidence; ev != nil {
		t.Logf("evidence: %v agree %d/%d", ev.Causes, ev.Agreement.Agree, ev.Agreement.Compared)
	}
	return res
}

func TestTopologySmoke(t *testing.T) {
	playOn(t, "gate-only", "nlb-ip", 2, 0.05)
	playOn(t, "drain-past-idle-timeout", "nlb-instance", 2, 0.05)
}
