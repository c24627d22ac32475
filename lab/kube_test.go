package lab_test

// The lab on a real control plane: kube-apiserver, etcd, the real
// deployment, ReplicaSet and EndpointSlice controllers and the scheduler;
// pods run under the node agent; the controller stand-in works through the
// API.

import (
	"context"
	"testing"

	"github.com/rollsafe/rollsafe/internal/testutil"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/timeline"
)

func playKube(t *testing.T, name string, rollouts int) (*lab.Result, *testutil.Records) {
	t.Helper()
	return playKubeOn(t, name, "", rollouts)
}

// playKubeOn plays the built-in scenario name on topology topo ("" for
// alb-ip) on the control plane, at time scale 0.1.
func playKubeOn(t *testing.T, name, topo string, rollouts int) (*lab.Result, *testutil.Records) {
	t.Helper()
	cp := controlplane.ForTest(t)
	ss, err := lab.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	if topo != "" {
		tp, err := lab.LookupTopology(topo)
		if err != nil {
			t.Fatal(err)
		}
		s = s.On(tp)
	}
	on := s.Topology
	if on == "" {
		on = lab.DefaultTopology
	}
	rec := &testutil.Records{}
	res, err := lab.Run(context.Background(), s, lab.Options{
		TimeScale: 0.1, Rollouts: rollouts, Rate: 200, App: []string{demoBin}, Sink: rec.Add,
		Kube: &lab.KubeOptions{Config: cp.Config()},
	})
	if err != nil {
		t.Fatalf("scenario %s on %s on the control plane: %v", name, on, err)
	}
	t.Logf("%s on %s (kube): %d requests, %d failed, classes %v, causes %v, %.1fs",
		name, on, res.Requests, res.Failed(), nonZero(res.Failures), res.Causes, res.Seconds)
	return res, rec
}

func TestKubeRecommendedLosesNothingNaiveLoses(t *testing.T) {
	res, rec := playKube(t, "recommended", 3)
	if res.Failed() != 0 {
		t.Fatalf("recommended on the control plane lost %d requests: %v", res.Failed(), res.Causes)
	}
	kinds := map[timeline.Kind]int{}
	complete := 0
	for _, r := range rec.All() {
		kinds[r.Kind]++
		if r.Kind == timeline.KindRollout && r.State == "complete" {
			complete++
		}
	}
	if complete != 3 || kinds[timeline.KindPod] == 0 || kinds[timeline.KindTarget] == 0 {
		t.Fatalf("want 3 completed rollouts and pod and target timelines; got %d complete, kinds %v", complete, kinds)
	}
	naive, _ := playKube(t, "naive", 2)
	if naive.Failed() == 0 {
		t.Fatal("naive settings on the control plane lost no request")
	}
}
