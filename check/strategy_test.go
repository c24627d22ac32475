package check_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// The strategy rule's "both 0, the API server rejects it" fires for the
// pair the API server rejects, not for one that only rounds to 0.
func TestStrategyBothZeroFindingOnlyWhenWritten(t *testing.T) {
	const doc = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3, " +
		"strategy: {rollingUpdate: {maxSurge: %s, maxUnavailable: %s}}, selector: {matchLabels: {app: web}}, " +
		"template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: web}]}}}\n"
	for _, c := range []struct {
		surge, unavail string
		want           bool
	}{{"0", "0%", true}, {"0", "10%", false}, {"0%", "25%", false}} {
		objs, err := manifest.Load([]string{"-"}, strings.NewReader(fmt.Sprintf(doc, c.surge, c.unavail)))
		res, cerr := check.Check(objs, workload.DefaultOptions())
		if err != nil || cerr != nil {
			t.Fatal(err, cerr)
		}
		got := strings.Contains(fmt.Sprint(res.Findings), "both resolve to 0")
		if got != c.want {
			t.Errorf("%s/%s on 3 replicas: both-zero finding %v, want %v", c.surge, c.unavail, got, c.want)
		}
	}
}
