package attribution

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// story is a hand-written rollout on one ALB: what probe --kube
// --target-group-arn records, and the ALB's access log, with the ALB's
// clock 300 ms ahead of the probe host's (seed 000's curl started 0.3 s
// before the ALB's request_creation_time).
type story struct {
	t0    time.Time
	recs  []*timeline.Record
	log   []accesslog.Entry
	seq   uint64
	skew  time.Duration
	polls time.Duration
}

func newStory() *story {
	return &story{t0: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), skew: 300 * time.Millisecond, polls: 2 * time.Second}
}

func (s *story) at(ms int) time.Time { return s.t0.Add(time.Duration(ms) * time.Millisecond) }

func trace(n uint64) string { return fmt.Sprintf("Root=1-6a6d6c00-%024x", n) }

// req records a request sent at ms and, when target is set, its access-log line.
func (s *story) req(ms int, status int, lat time.Duration, replica, target string, answered bool) string {
	s.seq++
	tr := trace(s.seq)
	cls := timeline.ClassOfStatus(status)
	r := &timeline.Record{Kind: timeline.KindRequest, Source: "probe", Time: s.at(ms), Seq: s.seq, Status: status,
		Class: cls, Latency: lat, TraceID: tr}
	if cls == timeline.ClassOK {
		r.Replica = replica
	}
	s.recs = append(s.recs, r)
	if target != "" || status == 503 {
		created := s.at(ms).Add(s.skew + time.Millisecond)
		e := accesslog.Entry{Type: []byte("http"), Time: created.Add(lat), ELB: []byte("app/k8s/abc"),
			Client: []byte("127.0.0.1:5000"), ELBStatusCode: status, TraceID: []byte(tr), RequestCreationTime: created,
			RequestProcessingTime: accesslog.NoTime, TargetProcessingTime: accesslog.NoTime, ResponseProcessingTime: accesslog.NoTime,
			Request: []byte("GET http://lb:80/ HTTP/1.1")}
		if target != "" {
			e.Target = []byte(target)
		}
		if answered {
			e.TargetStatusCode = status
			e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = 0, lat, 0
		}
		s.log = append(s.log, e)
	}
	return tr
}

func (s *story) pod(ms int, name, ip, state string, attrs ...string) {
	a := map[string]string{"ip": ip}
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	s.recs = append(s.recs, &timeline.Record{Kind: timeline.KindPod, Source: "kube", Time: s.at(ms), Object: name, State: state, Attrs: a})
}

// target records a change seen by the poll at ms (the previous poll polls earlier).
func (s *story) target(ms int, key, state string) {
	a := map[string]string{}
	if ms > 0 {
		a["prev_poll"] = s.at(ms).Add(-s.polls).Format(time.RFC3339Nano)
	}
	s.recs = append(s.recs, &timeline.Record{Kind: timeline.KindTarget, Source: "elbv2", Time: s.at(ms), Object: key, State: state, Attrs: a})
}

func (s *story) truth(tr string, c timeline.Cause) {
	s.recs = append(s.recs, &timeline.Record{Kind: timeline.KindTruth, Source: "lab", Time: s.t0, TraceID: tr, Cause: c})
}

func (s *story) analyze(t *testing.T, withLog bool) *Run {
	t.Helper()
	a := New(Options{})
	for _, r := range s.recs {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if withLog {
		for i := range s.log {
			a.AddAccessLog(accesslog.Pos{File: "alb.log", Line: i + 1}, &s.log[i])
		}
	}
	res := a.Result()
	if len(res.Runs) != 1 {
		t.Fatalf("%d runs", len(res.Runs))
	}
	return res.Runs[0]
}

func byTrace(run *Run, tr string) *Failure {
	for i := range run.Failures {
		if run.Failures[i].TraceID == tr {
			return &run.Failures[i]
		}
	}
	return nil
}

const (
	oldT = "10.0.2.61:1325"
	newT = "10.0.2.77:1325"
	oldB = "10.0.2.90:1325"
)

// seed000 is seed 000's rollout: the old pod exits on SIGTERM at once, the
// controller deregisters it 1 s after Terminating, the ALB keeps routing to
// it: 502s while its sandbox holds the IP, 504s after the pod is deleted.
// Two other targets drain too, so the controller lag can be estimated.
func seed000() (*story, map[string]timeline.Cause) {
	s := newStory()
	want := map[string]timeline.Cause{}
	s.pod(0, "api-old", "10.0.2.61", "Ready", "container/app", "running+ready")
	s.pod(0, "api-b", "10.0.2.90", "Ready", "container/app", "running+ready")
	s.target(0, oldT, "healthy")
	s.target(0, oldB, "healthy")
	s.pod(1000, "api-new", "10.0.2.77", "Pending")
	s.target(2000, newT, "initial")
	s.pod(1500, "api-new", "10.0.2.77", "Ready", "container/app", "running+ready")
	s.target(6000, newT, "healthy")
	for ms := 0; ms < 30000; ms += 100 {
		s.req(ms, 200, 3*time.Millisecond, "api-new", newT, true)
	}
	for ms := 0; ms < 10000; ms += 100 {
		s.req(ms+50, 200, 3*time.Millisecond, "api-old", oldT, true)
	}
	s.pod(10000, "api-old", "10.0.2.61", "Terminating", "container/app", "running+ready")
	s.pod(10050, "api-old", "10.0.2.61", "Terminating", "container/app", "terminated:Error:2")
	// Exited, still registered: the controller has not deregistered yet.
	want[s.req(10500, 502, 2*time.Millisecond, "", oldT, false)] = timeline.CauseExitedBeforeDeregistration
	// Deregistered at 11.0 s; polls at 10.0 (in service) and 12.0 (draining).
	s.target(12000, oldT, "draining")
	want[s.req(12500, 502, 2*time.Millisecond, "", oldT, false)] = timeline.CauseDrainingTargetExited
	s.pod(13000, "api-old", "10.0.2.61", "Deleted")
	// The IP has left: the ALB's connect times out after 10 s: 504.
	want[s.req(14000, 504, 10*time.Second, "", oldT, false)] = timeline.CauseDrainingTargetGone
	want[s.req(17500, 504, 10*time.Second, "", oldT, false)] = timeline.CauseDrainingTargetGone
	// A second replacement, for the lag estimate: b Terminating at 20 s,
	// draining between the polls at 20.0 and 22.0 (really at 21.0).
	s.pod(20000, "api-b", "10.0.2.90", "Terminating", "container/app", "running+ready")
	s.req(20500, 200, time.Millisecond, "api-b", oldB, true)
	s.target(22000, oldB, "draining")
	s.req(23000, 200, time.Millisecond, "api-b", oldB, true) // still routed 2 s after
	s.pod(26000, "api-b", "10.0.2.90", "Terminating", "container/app", "terminated:Completed:0")
	s.target(40000, oldT, "unused")
	for tr, c := range want {
		s.truth(tr, c)
	}
	return s, want
}

func TestSeed000CausesFromEvidence(t *testing.T) {
	s, want := seed000()
	run := s.analyze(t, true)
	if run.Failed != uint64(len(want)) || len(run.Failures) != len(want) {
		t.Fatalf("failed %d, listed %d; want %d", run.Failed, len(run.Failures), len(want))
	}
	for tr, c := range want {
		f := byTrace(run, tr)
		if f == nil {
			t.Fatalf("%s not listed", tr)
		}
		if f.Cause != c || f.Target != oldT || f.Pod != "api-old" {
			t.Errorf("%s at %s: cause %s target %s pod %s, want %s on %s (api-old); %s", tr, f.Time.Format("05.000"), f.Cause, f.Target, f.Pod, c, oldT, f.Reason)
		}
		if len(f.Evidence) < 3 || f.Evidence[1].Source != "accesslog" || f.Evidence[1].At == "" {
			t.Errorf("%s: evidence %+v", tr, f.Evidence)
		}
	}
	// The 502 at 12.5 s and the 504s are past the poll that saw draining:
	// certain. The 502 at 10.5 s is inside the poll window, decided by the
	// controller lag the two drains allow: likely.
	for tr, c := range want {
		f := byTrace(run, tr)
		wantConf := Certain
		if c == timeline.CauseExitedBeforeDeregistration {
			wantConf = Likely
		}
		if f.Confidence != wantConf {
			t.Errorf("%s (%s): confidence %s, want %s (%s)", tr, c, f.Confidence, wantConf, f.Reason)
		}
	}
	if run.Agreement == nil || run.Agreement.Agree != uint64(len(want)) || run.Agreement.WronglyCertain != 0 {
		t.Errorf("agreement %+v", run.Agreement)
	}
	if got := run.Join.ClockSkewMS; got < 299 || got > 302 {
		t.Errorf("clock skew %.1f ms, want ~301 (300 + 1 ms to the LB)", got)
	}
	if run.Causes[0].Cause != timeline.CauseDrainingTargetGone || run.Causes[0].Count != 2 {
		t.Errorf("causes %+v", run.Causes)
	}
}

func TestPropagationMeasured(t *testing.T) {
	s, _ := seed000()
	run := s.analyze(t, true)
	p := run.Propagation
	if p == nil || len(p.Targets) != 2 {
		t.Fatalf("propagation %+v", p)
	}
	// old: last routed at 17.5 s (+1 ms to the LB), deregistered between the
	// polls at 10.0 and 12.0; the lag estimate (both pods: 0..2 s after
	// Terminating) does not narrow it, so the estimate is the middle, 11.0 s.
	old := p.Targets[0]
	if old.Target != oldT || old.Via != "accesslog" || !near(old.MinSeconds, 5.501) || !near(old.MaxSeconds, 7.501) || !near(old.Seconds, 6.501) {
		t.Errorf("old target: %+v", old)
	}
	b := p.Targets[1]
	if b.Target != oldB || !near(b.Seconds, 2.001) || !near(b.MaxSeconds, 3.001) {
		t.Errorf("b target: %+v", b)
	}
	if !near(p.MaxSeconds, 6.501) || !near(p.MaxUpperSeconds, 7.501) || !near(p.ControllerLagSeconds, 2) {
		t.Errorf("max %.3f upper %.3f lag %.3f", p.MaxSeconds, p.MaxUpperSeconds, p.ControllerLagSeconds)
	}
	// check's arithmetic: ceil(lag) + ceil(P upper) + 2 s margin.
	if im := p.Implied; im.MinPreStopSeconds != 12 || im.Command != "rollsafe check --propagation 8s --controller-lag 2s deploy/" {
		t.Errorf("implied %+v", im)
	}
	if !strings.Contains(run.Headline, "4 of 406 failed; 2 were routed to a draining target whose pod was already deleted (504 after the connect timeout)") ||
		!strings.Contains(run.Headline, "up to 6.5 s after deregistration") {
		t.Errorf("headline %q", run.Headline)
	}
}

func near(got, want float64) bool { return got > want-0.002 && got < want+0.002 }

// Without the access log, the target is inferred and nothing is certain;
// the run says what the log would settle.
func TestWithoutAccessLog(t *testing.T) {
	s, want := seed000()
	run := s.analyze(t, false)
	for tr := range want {
		f := byTrace(run, tr)
		if f.Confidence == Certain {
			t.Errorf("%s: certain without an access log (%s)", tr, f.Cause)
		}
	}
	if len(run.Missing) != 1 || !strings.Contains(run.Missing[0], "access log") {
		t.Errorf("missing %v", run.Missing)
	}
	if run.Agreement.WronglyCertain != 0 {
		t.Errorf("wrongly certain %d", run.Agreement.WronglyCertain)
	}
	// P from answers alone: only api-b answered after its deregistration.
	if p := run.Propagation; p == nil || len(p.Targets) != 1 || p.Targets[0].Via != "replica" {
		t.Errorf("propagation %+v", p)
	}
}

// Records and logs of different runs do not join: said so, no cause from the log.
func TestLogsThatDoNotJoin(t *testing.T) {
	s, _ := seed000()
	other, _ := seed000()
	a := New(Options{})
	for _, r := range s.recs {
		a.Add(r)
	}
	for i := range other.log {
		e := other.log[i]
		e.TraceID = []byte(fmt.Sprintf("Root=1-6a6d6c00-%024x", 1000000+i))
		a.AddAccessLog(accesslog.Pos{File: "other.log", Line: i + 1}, &e)
	}
	run := a.Result().Runs[0]
	if !strings.Contains(run.Join.Note, "do not join") {
		t.Errorf("join %+v", run.Join)
	}
	for _, f := range run.Failures {
		if f.Confidence == Certain || (len(f.Evidence) > 1 && f.Evidence[1].Source == "accesslog") {
			t.Errorf("%s: %s with %+v", f.TraceID, f.Confidence, f.Evidence)
		}
	}
}

// Fail-open: the ALB routes to a target that is not healthy only when no
// target is; a 503 with no target is no registered target.
func TestFailOpenAndNoTarget(t *testing.T) {
	s := newStory()
	s.pod(0, "a", "10.0.0.1", "Ready", "container/app", "running+ready")
	s.target(0, "10.0.0.1:80", "initial")
	s.pod(0, "b", "10.0.0.2", "Ready", "container/app", "running+ready")
	s.target(0, "10.0.0.2:80", "initial")
	s.req(100, 200, time.Millisecond, "a", "10.0.0.1:80", true)
	s.pod(3000, "b", "10.0.0.2", "Terminating", "container/app", "terminated:Error:2")
	s.target(4000, "10.0.0.2:80", "draining")
	open := s.req(5000, 502, time.Millisecond, "", "10.0.0.2:80", false)
	s.target(8000, "10.0.0.1:80", "draining")
	s.target(10000, "10.0.0.2:80", "unused")
	s.target(10000, "10.0.0.1:80", "unused")
	none := s.req(12000, 503, time.Millisecond, "", "", false)
	run := s.analyze(t, true)
	if f := byTrace(run, open); f.Cause != timeline.CauseNoHealthyTarget || f.Confidence != Certain {
		t.Errorf("fail-open: %s %s (%s)", f.Cause, f.Confidence, f.Reason)
	}
	if f := byTrace(run, none); f.Cause != timeline.CauseNoRegisteredTarget || f.Confidence != Certain {
		t.Errorf("503: %s %s", f.Cause, f.Confidence)
	}
}

// A request in flight when the kubelet killed the container (exit 137).
func TestKilledByGrace(t *testing.T) {
	s := newStory()
	s.pod(0, "a", "10.0.0.1", "Ready", "container/app", "running+ready")
	s.target(0, "10.0.0.1:80", "healthy")
	s.pod(1000, "a", "10.0.0.1", "Terminating", "container/app", "running+ready")
	s.target(2000, "10.0.0.1:80", "draining")
	tr := s.req(2500, 502, 3*time.Second, "", "10.0.0.1:80", false)
	s.pod(5000, "a", "10.0.0.1", "Terminating", "container/app", "terminated:Error:137")
	run := s.analyze(t, true)
	if f := byTrace(run, tr); f.Cause != timeline.CauseKilledByGrace {
		t.Errorf("got %s (%s)", f.Cause, f.Reason)
	}
}

// The app answered 502 itself: no cause is invented.
func TestTargetAnswered(t *testing.T) {
	s := newStory()
	s.pod(0, "a", "10.0.0.1", "Ready")
	s.target(0, "10.0.0.1:80", "healthy")
	tr := s.req(100, 502, time.Millisecond, "", "10.0.0.1:80", true)
	run := s.analyze(t, true)
	if f := byTrace(run, tr); f.Cause != timeline.CauseUnknown || f.Confidence != Unknown || !strings.Contains(f.Reason, "answered 502") {
		t.Errorf("got %s %s %q", f.Cause, f.Confidence, f.Reason)
	}
}
