package report

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/timeline"
)

// TestFailureStatesAtThatInstant: every failed request lists each pod's and
// each target's latest state at or before the instant it was sent, from a
// small hand-written timeline written out of time order.
func TestFailureStatesAtThatInstant(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	req := func(ms int, class timeline.Class, status int) *timeline.Record {
		return &timeline.Record{Kind: timeline.KindRequest, Time: at(ms), Source: "probe", Seq: uint64(ms),
			Latency: time.Millisecond, Status: status, Class: class}
	}
	recs := []*timeline.Record{
		req(0, timeline.ClassOK, 200),
		{Kind: timeline.KindTarget, Time: at(100), Source: "elbv2", Object: "10.0.0.1:80", State: "draining", Reason: "Target.DeregistrationInProgress"},
		{Kind: timeline.KindPod, Time: at(100), Source: "kube", Object: "web-a", State: "Terminating"},
		{Kind: timeline.KindPod, Time: at(0), Source: "kube", Object: "web-a", State: "Running"},
		{Kind: timeline.KindTarget, Time: at(0), Source: "elbv2", Object: "10.0.0.1:80", State: "healthy"},
		{Kind: timeline.KindPod, Time: at(150), Source: "kube", Object: "web-b", State: "Pending"},
		{Kind: timeline.KindRollout, Time: at(10), Source: "kube", Object: "web", State: "progressing"},
		req(50, timeline.ClassHTTP502, 502),
		req(100, timeline.ClassHTTP504, 504), // stamped the same instant as the change: sees it
		req(120, timeline.ClassOK, 200),
		req(200, timeline.ClassConnReset, 0),
	}
	path := testutil.WriteTimeline(t, filepath.Join(t.TempDir(), "run.ndjson"), recs)
	rep, err := Build(context.Background(), []string{path}, Options{})
	if err == nil && len(rep.Runs) != 1 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ pods, targets []StateAt }
	want := []row{
		{pods: []StateAt{{Object: "web-a", Source: "kube", State: "Running", SinceMS: 0}},
			targets: []StateAt{{Object: "10.0.0.1:80", Source: "elbv2", State: "healthy", SinceMS: 0}}},
		{pods: []StateAt{{Object: "web-a", Source: "kube", State: "Terminating", SinceMS: 100}},
			targets: []StateAt{{Object: "10.0.0.1:80", Source: "elbv2", State: "draining", Reason: "Target.DeregistrationInProgress", SinceMS: 100}}},
		{pods: []StateAt{{Object: "web-a", Source: "kube", State: "Terminating", SinceMS: 100}, {Object: "web-b", Source: "kube", State: "Pending", SinceMS: 150}},
			targets: []StateAt{{Object: "10.0.0.1:80", Source: "elbv2", State: "draining", Reason: "Target.DeregistrationInProgress", SinceMS: 100}}},
	}
	run := rep.Runs[0]
	if len(run.Failures) != len(want) {
		t.Fatalf("%d failures, want %d: %+v", len(run.Failures), len(want), run.Failures)
	}
	for i, f := range run.Failures {
		if !reflect.DeepEqual(f.Pods, want[i].pods) || !reflect.DeepEqual(f.Targets, want[i].targets) {
			t.Errorf("failure %d at %v ms (%s):\n pods    %+v\n want    %+v\n targets %+v\n want    %+v",
				i, f.AtMS, f.Class, f.Pods, want[i].pods, f.Targets, want[i].targets)
		}
	}

	var html bytes.Buffer
	if err := HTML(&html, rep); err != nil {
		t.Fatal(err)
	}
	s := html.String()
	table := s[strings.Index(s, `<table class="failures"`):]
	table = table[:strings.Index(table, "</table>")]
	for _, cell := range []string{
		"<div>web-a (kube): Running</div>",
		"<div>10.0.0.1:80 (elbv2): draining (Target.DeregistrationInProgress)</div>",
		"<div>web-a (kube): Terminating</div><div>web-b (kube): Pending</div>",
	} {
		if !strings.Contains(table, cell) {
			t.Errorf("failure table lacks %q:\n%s", cell, table)
		}
	}
}
