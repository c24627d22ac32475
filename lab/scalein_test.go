package lab_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/timeline"
	"github.com/rollsafe/rollsafe/workload"
)

// playScaleIn plays a built-in scale-in scenario on its own topology
// (clb), as `rollsafe lab --topology clb --scenario name` does, and
// returns the result and the addresses of the nodes that left, after
// checking that one left in every round.
func playScaleIn(t *testing.T, name string, rollouts int) (*lab.Result, []timeline.Record, map[string]bool) {
	t.Helper()
	ss, err := lab.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	clb, _ := lab.LookupTopology("clb")
	rec := &testutil.Records{}
	res, err := lab.Run(context.Background(), ss[0].On(clb), lab.Options{TimeScale: topoScale, Rollouts: rollouts, Rate: 200,
		App: []string{demoBin}, Sink: rec.Add})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	all := rec.All()
	left := map[string]bool{}
	for _, r := range all {
		if r.Kind == timeline.KindEvent && r.Reason == lab.ReasonNodeLeft {
			left[r.Attrs["target"]] = true
		}
	}
	t.Logf("%s [%s]: %d requests, %d failed, classes %v, causes %v, %d nodes left, %.1fs",
		name, res.Settings, res.Requests, res.Failed(), nonZero(res.Failures), res.Causes, len(left), res.Seconds)
	if res.Requests < 500 || res.Rollouts != rollouts || len(left) != rollouts {
		t.Fatalf("%d requests, %d rollouts, %d nodes left: the load, the rollouts or the node leaves did not run",
			res.Requests, res.Rollouts, len(left))
	}
	return res, all, left
}

// clb-connection-draining-off's lab pair. In every round a node leaves the
// Classic ELB while 30 s requests run through it. With draining off (the
// in-tree provider's default) the ELB closes its connections to the node
// at once: the requests in flight on them are cut, and nothing else fails.
// With draining on for check's 49 s the node's requests finish: nothing is
// lost over 5 rounds.
func TestCLBScaleIn(t *testing.T) {
	broken, recs, left := playScaleIn(t, "clb-scale-in", 3)
	if broken.Scenario.DeregistrationDelay != 0 {
		t.Fatalf("clb-scale-in runs with draining %v, want off", broken.Scenario.DeregistrationDelay)
	}
	expectCauses(t, broken, []timeline.Cause{timeline.CauseDeregistrationCut})
	for _, r := range recs {
		if r.Kind == timeline.KindTruth && !left[r.Attrs["target"]] {
			t.Errorf("failure %s (%s) through %s, a node that never left", r.TraceID, r.Cause, r.Attrs["target"])
		}
	}

	kept, _, _ := playScaleIn(t, "clb-scale-in-draining", 5)
	if kept.Scenario.DeregistrationDelay < kept.Scenario.SlowRequest {
		t.Fatalf("clb-scale-in-draining drains %v, shorter than its %v requests", kept.Scenario.DeregistrationDelay, kept.Scenario.SlowRequest)
	}
	expectNoLoss(t, kept)
}

// A node leaves the load balancer only where the nodes are its targets,
// and with Cluster only (the lab does not move a Local node's pods).
func TestNodeLeaveNeedsInstanceClusterPath(t *testing.T) {
	ss, err := lab.Lookup("clb-scale-in")
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := lab.LookupTopology("alb-ip")
	local := ss[0]
	local.Policy = "Local"
	for _, c := range []struct {
		s    lab.Scenario
		want string
	}{
		{ss[0].On(ip), "only on an instance topology"},
		{local, "externalTrafficPolicy Cluster only"},
	} {
		_, err := lab.Run(context.Background(), c.s, lab.Options{TimeScale: topoScale, Rollouts: 1, App: []string{demoBin}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s on %s (%s): %v, want an error saying %q", c.s.Name, c.s.Topology, c.s.Policy, err, c.want)
		}
	}
}

// The pair's manifests (testdata/clb-scale-in, and its overlay with
// check's fix pasted in) hold the built-in scenarios' settings, and check
// agrees with the lab on them: it names clb-connection-draining-off for
// the broken one, with the 49 s the kept one runs, and not for the kept
// one. The manifests cannot hold the lab's traffic and event (the 30 s
// requests, the node leave): the max-request-duration annotation tells
// check how long the requests are.
func TestCLBScaleInManifestsAgreeWithCheck(t *testing.T) {
	const rule = "clb-connection-draining-off"
	for _, c := range []struct {
		dir, scenario string
		fires         bool
	}{
		{"testdata/clb-scale-in", "clb-scale-in", true},
		{"testdata/clb-scale-in-draining", "clb-scale-in-draining", false},
	} {
		ss, err := lab.Lookup(c.scenario)
		if err != nil {
			t.Fatal(err)
		}
		want := ss[0]
		got, err := lab.FromManifests(c.dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Topology != want.Topology || got.Policy != want.Policy || got.Replicas != want.Replicas ||
			got.Grace != want.Grace || got.PreStop != want.PreStop || got.DeregistrationDelay != want.DeregistrationDelay ||
			got.App != want.App || got.LBIdleTimeout != want.LBIdleTimeout {
			t.Errorf("%s replays as [%s], the built-in %s is [%s]", c.dir, got.KeySettings(), c.scenario, want.KeySettings())
		}
		finding := findRule(t, c.dir, rule)
		switch {
		case c.fires && finding == nil:
			t.Errorf("check %s: no %s", c.dir, rule)
		case !c.fires && finding != nil:
			t.Errorf("check %s: %s: %s", c.dir, rule, finding.Message)
		case c.fires:
			kept, _ := lab.Lookup("clb-scale-in-draining")
			timeout := fmt.Sprintf("connection-draining-timeout: \"%d\"", int(kept[0].DeregistrationDelay.Seconds()))
			if !strings.Contains(finding.Fix, timeout) {
				t.Errorf("check's fix for %s is not the kept scenario's %s:\n%s", c.dir, timeout, finding.Fix)
			}
		}
	}
}

// findRule runs check on path and returns its finding of rule, if any.
func findRule(t *testing.T, path, rule string) *check.Finding {
	t.Helper()
	objs, err := manifest.Load([]string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Check(objs, workload.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range res.Findings {
		if f.Rule == rule {
			return &res.Findings[i]
		}
	}
	return nil
}
