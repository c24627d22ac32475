package check_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/workload"
)

// Each path's stop window, as the messages name it and --recommend sizes
// the preStop by it (window + the 2 s margin; a CLB's draining timeout is
// no reason to sleep longer: no target deregisters in a rollout).
func TestInstanceStopWindows(t *testing.T) {
	for _, tc := range []struct {
		file, rule, text string
		min, preStop     time.Duration
	}{
		{"instance-cluster-prestop-too-short-hit.yaml", "prestop-too-short",
			"preStop waits 5s, less than endpoint update 5s (the controller-lag figure) + kube-proxy sync 1s (min-sync-period) = 6s", 6 * time.Second, 8 * time.Second},
		{"instance-local-prestop-too-short-hit.yaml", "prestop-too-short",
			"preStop waits 40s, less than endpoint update 5s (the controller-lag figure) + kube-proxy sync 1s (min-sync-period) + CLB health check 60s (unhealthy threshold 6 × interval 10s; externalTrafficPolicy Local) = 66s",
			66 * time.Second, 68 * time.Second},
		{"instance-local-drain-counts-to-readiness-hit.yaml", "prestop-missing",
			"the app drains only 90s (of which 10s counts", 66 * time.Second, 68 * time.Second},
		// The ip route's window is the longer: it judges the workload.
		{"instance-and-ip-mixed-prestop-too-short-hit.yaml", "prestop-too-short",
			"preStop waits 10s, less than controller lag 5s + propagation 17s = 22s", 22 * time.Second, 49 * time.Second},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res := checkFiles(t, workload.DefaultOptions(), "testdata/cases/"+tc.file)
			found := false
			for _, f := range res.Findings {
				found = found || (f.Rule == tc.rule && strings.Contains(f.Message, tc.text))
			}
			if !found {
				t.Errorf("no %s saying %q in %v", tc.rule, tc.text, res.Findings)
			}
			if len(res.Workloads) != 1 {
				t.Fatalf("workloads %v", res.Workloads)
			}
			if r := check.Recommend(res.Workloads[0], workload.DefaultOptions()); r.MinPreStop != tc.min || r.PreStop != tc.preStop {
				t.Errorf("minPreStop %v, preStop %v; want %v, %v", r.MinPreStop, r.PreStop, tc.min, tc.preStop)
			}
		})
	}
}
