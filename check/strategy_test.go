package check_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

func deploymentYAML(replicas int, surge, unavail string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  strategy:
    rollingUpdate:
      maxSurge: %s
      maxUnavailable: %s
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web
`, replicas, surge, unavail)
}

// The strategy rule's "both 0, the API server rejects it" fires for the
// pair the API server rejects, not for one that only rounds to 0.
func TestStrategyBothZeroFindingOnlyWhenWritten(t *testing.T) {
	for _, c := range []struct {
		surge, unavail string
		want           bool
	}{{"0", "0%", true}, {"0", "10%", false}, {"0%", "25%", false}} {
		objs, err := manifest.Load([]string{"-"}, strings.NewReader(deploymentYAML(3, c.surge, c.unavail)))
		if err != nil {
			t.Fatal(err)
		}
		res, err := check.Check(objs, workload.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, f := range res.Findings {
			if strings.Contains(f.Message, "both resolve to 0") {
				got = true
			}
		}
		if got != c.want {
			t.Errorf("%s/%s on 3 replicas: both-zero finding %v, want %v", c.surge, c.unavail, got, c.want)
		}
	}
}
