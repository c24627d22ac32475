package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/testutil"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

const hostile = `<script>document.title="pwned"</script><img src=x onerror=alert(1)>`

// twoScenarios writes the records of two lab scenarios and returns their
// paths, the access log last (a log line joins the request it names, so
// request records come first):
//
//   - naive: 3 s at 500 req/s (1500 requests, every one with a trace id)
//     over two old pods replaced by two new ones, no preStop. Each old pod
//     exits right after it turns Terminating, while the ALB keeps routing
//     to it for about a second: 502s, and 504s once its pod is deleted.
//     Pod states as the Kubernetes API showed them (Source kube, Attrs ip),
//     target health polled every 500 ms (Source elbv2, Attrs prev_poll),
//     the lab's ground truth (Source lab lanes and KindTruth records), and
//     the ALB's access log with its clock 200 ms ahead. Hostile strings in
//     an error, a replica header and a rollout's reason.
//   - recommended: 3 s at 100 req/s (300 requests), one pod replaced with a
//     preStop: the old pod keeps answering while the ALB still routes to
//     it, so nothing fails and P is measured from its answers.
func twoScenarios(t *testing.T) []string {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := func(base time.Time, s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	const port = ":1325"
	var naive, rec []*timeline.Record
	var logLines []string

	// naive
	type pod struct {
		name, ip       string
		exit, del, off float64 // exited, deleted, last routed (s)
	}
	oldA := pod{"web-7d9f-old-a", "10.0.0.1", 1.05, 2.0, 2.05}
	oldB := pod{"web-7d9f-old-b", "10.0.0.2", 1.25, 2.2, 2.25}
	kube := func(s float64, name, ip, state string) *timeline.Record {
		return &timeline.Record{Kind: timeline.KindPod, Time: at(t0, s), Source: "kube", Scenario: "naive", Object: name, State: state, Attrs: map[string]string{"ip": ip}}
	}
	lab := func(kind timeline.Kind, s float64, name, state, reason string) *timeline.Record {
		return &timeline.Record{Kind: kind, Time: at(t0, s), Source: "lab", Scenario: "naive", Object: name, State: state, Reason: reason}
	}
	poll := func(sc string, base time.Time, s, prev float64, target, state string) *timeline.Record {
		r := &timeline.Record{Kind: timeline.KindTarget, Time: at(base, s), Source: "elbv2", Scenario: sc, Object: target, State: state}
		if prev >= 0 {
			r.Attrs = map[string]string{"prev_poll": at(base, prev).Format(time.RFC3339Nano)}
		}
		return r
	}
	naive = append(naive,
		kube(0, oldA.name, oldA.ip, "Ready"), kube(0, oldB.name, oldB.ip, "Ready"),
		kube(0.3, "web-8c1e-new-a", "10.0.0.3", "Pending"), kube(0.3, "web-8c1e-new-b", "10.0.0.4", "Pending"),
		kube(0.5, "web-8c1e-new-a", "10.0.0.3", "Running"), kube(0.5, "web-8c1e-new-b", "10.0.0.4", "Running"),
		kube(0.8, "web-8c1e-new-a", "10.0.0.3", "Ready"), kube(0.8, "web-8c1e-new-b", "10.0.0.4", "Ready"),
		kube(1.0, oldA.name, oldA.ip, "Terminating"), kube(oldA.exit+0.02, oldA.name, oldA.ip, "Exited"), kube(oldA.del, oldA.name, oldA.ip, "Deleted"),
		kube(1.2, oldB.name, oldB.ip, "Terminating"), kube(oldB.exit+0.02, oldB.name, oldB.ip, "Exited"), kube(oldB.del, oldB.name, oldB.ip, "Deleted"),
		poll("naive", t0, 0, -1, oldA.ip+port, "healthy"), poll("naive", t0, 0, -1, oldB.ip+port, "healthy"),
		poll("naive", t0, 1.0, 0.5, "10.0.0.3"+port, "initial"), poll("naive", t0, 1.0, 0.5, "10.0.0.4"+port, "initial"),
		poll("naive", t0, 1.5, 1.0, oldA.ip+port, "draining"), poll("naive", t0, 1.5, 1.0, oldB.ip+port, "draining"),
		poll("naive", t0, 1.5, 1.0, "10.0.0.3"+port, "healthy"), poll("naive", t0, 1.5, 1.0, "10.0.0.4"+port, "healthy"),
		poll("naive", t0, 2.5, 2.0, oldA.ip+port, "unused"), poll("naive", t0, 2.5, 2.0, oldB.ip+port, "unused"),
		// the lab's ground truth of old-a: the kubelet stand-in's states
		lab(timeline.KindPod, 0, oldA.name, "Ready", ""), lab(timeline.KindPod, 1.0, oldA.name, "Terminating", ""),
		lab(timeline.KindPod, 1.0, oldA.name, "SIGTERM", ""), lab(timeline.KindPod, 1.05, oldA.name, "Exited", "exit 0"),
		lab(timeline.KindPod, 2.0, oldA.name, "Deleted", ""),
		lab(timeline.KindTarget, 0, oldA.ip+port, "healthy", ""), lab(timeline.KindTarget, 1.1, oldA.ip+port, "draining", ""),
		lab(timeline.KindTarget, 2.4, oldA.ip+port, "unused", ""),
		&timeline.Record{Kind: timeline.KindRollout, Time: at(t0, 0.2), Source: "kube", Scenario: "naive", Object: "web", State: "Progressing", Reason: hostile, Attrs: map[string]string{"resource": "deployment"}},
	)
	var seq uint64
	trace := func(sc byte) string { seq++; return fmt.Sprintf("Root=1-%08x-%024x", 0x65e1a600+uint64(sc), seq) }
	for i := range 1500 {
		s := float64(i) * 0.002
		var routable []pod
		for _, p := range []pod{oldA, oldB} {
			if s < p.off {
				routable = append(routable, p)
			}
		}
		if s >= 1.5 {
			routable = append(routable, pod{name: "web-8c1e-new-a", ip: "10.0.0.3", exit: 99, del: 99}, pod{name: "web-8c1e-new-b", ip: "10.0.0.4", exit: 99, del: 99})
		}
		p := routable[i%len(routable)]
		due := at(t0, s)
		r := &timeline.Record{Kind: timeline.KindRequest, Time: due.Add(40 * time.Microsecond), Scheduled: due, Source: "probe", Scenario: "naive",
			Seq: uint64(i + 1), Latency: time.Duration(2+i%5) * time.Millisecond, Status: 200, Class: timeline.ClassOK, Replica: p.name, Bytes: 27,
			TraceID: trace('n')}
		var truth timeline.Cause
		switch deregistered := p.exit - 0.05 + 0.1; {
		case s >= p.del:
			r.Status, r.Class, r.Replica, r.Latency, r.Error = 504, timeline.ClassHTTP504, "", time.Second, "504 Gateway Time-out"
			truth = timeline.CauseDrainingTargetGone
		case s >= p.exit:
			r.Status, r.Class, r.Replica, r.Latency = 502, timeline.ClassHTTP502, "", time.Millisecond
			truth = timeline.CauseDrainingTargetExited
			if s < deregistered {
				truth = timeline.CauseExitedBeforeDeregistration
			}
		}
		switch i {
		case 100:
			r.Replica = hostile
		case 1101:
			r.Error = "upstream said " + hostile
		}
		naive = append(naive, r)
		if truth != "" {
			naive = append(naive, &timeline.Record{Kind: timeline.KindTruth, Time: r.Time, Source: "lab", Scenario: "naive", TraceID: r.TraceID, Cause: truth})
		}
		created := r.Time.Add(200 * time.Millisecond) // the ALB's clock runs ahead
		e := accesslog.Entry{Type: []byte("http"), Time: created.Add(r.Latency), ELB: []byte("app/k8s-demo/50dc6c495c0c9188"),
			Client: []byte("203.0.113.10:40000"), Target: []byte(p.ip + port), ELBStatusCode: r.Status,
			TargetProcessingTime: r.Latency, ReceivedBytes: 96, SentBytes: 27, Request: []byte("GET http://api.example.com:80/ HTTP/1.1"),
			TraceID: []byte(r.TraceID), RequestCreationTime: created, ActionsExecuted: []byte("forward")}
		if r.Class == timeline.ClassOK {
			e.TargetStatusCode = 200
		} else {
			e.TargetProcessingTime = -1
		}
		logLines = append(logLines, e.String())
	}

	// recommended
	t1 := t0.Add(10 * time.Second)
	rk := func(s float64, name, ip, state string) *timeline.Record {
		r := kube(0, name, ip, state)
		r.Time, r.Scenario = at(t1, s), "recommended"
		return r
	}
	rec = append(rec,
		rk(0, "web-5b2a-old", "10.0.1.1", "Ready"),
		rk(0.2, "web-6c3b-new", "10.0.1.2", "Pending"), rk(0.4, "web-6c3b-new", "10.0.1.2", "Running"),
		rk(1.0, "web-5b2a-old", "10.0.1.1", "Terminating"), rk(1.6, "web-6c3b-new", "10.0.1.2", "Ready"),
		rk(2.6, "web-5b2a-old", "10.0.1.1", "Exited"), rk(2.7, "web-5b2a-old", "10.0.1.1", "Deleted"),
		poll("recommended", t1, 0, -1, "10.0.1.1"+port, "healthy"),
		poll("recommended", t1, 0.5, 0, "10.0.1.2"+port, "initial"),
		poll("recommended", t1, 1.5, 1.0, "10.0.1.1"+port, "draining"),
		poll("recommended", t1, 1.5, 1.0, "10.0.1.2"+port, "healthy"),
		&timeline.Record{Kind: timeline.KindRollout, Time: at(t1, 0.2), Source: "kube", Scenario: "recommended", Object: "web", State: "Progressing", Attrs: map[string]string{"resource": "deployment"}},
	)
	for i := range 300 {
		s := float64(i) * 0.01
		replica := "web-5b2a-old"
		if s >= 1.5 && (s >= 1.9 || i%2 == 0) {
			replica = "web-6c3b-new"
		}
		due := at(t1, s)
		rec = append(rec, &timeline.Record{Kind: timeline.KindRequest, Time: due.Add(40 * time.Microsecond), Scheduled: due, Source: "probe",
			Scenario: "recommended", Seq: uint64(i + 1), Latency: time.Duration(2+i%5) * time.Millisecond, Status: 200, Class: timeline.ClassOK,
			Replica: replica, Bytes: 27, TraceID: trace('r')})
	}

	write := func(name string, recs []*timeline.Record) string {
		return testutil.WriteTimeline(t, filepath.Join(dir, name), recs)
	}
	logPath := filepath.Join(dir, "alb.log")
	if err := os.WriteFile(logPath, []byte(strings.Join(logLines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{write("naive.ndjson", naive), write("recommended.ndjson", rec), logPath}
}

// textOf is s as a browser's serialiser writes it in text content.
func textOf(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// section is the rendered <section> with id, "" if absent.
func section(dom, id string) string {
	i := strings.Index(dom, `<section class="run" id="`+id+`"`)
	if i < 0 {
		return ""
	}
	s := dom[i:]
	return s[:strings.Index(s, "</section>")]
}

// The page opened in a real browser, for two scenarios: each has its own
// section telling its story first (headline, causes with their rule pages,
// agreement with the lab, measured P with the check command) and then its
// own numbers, charts, failures and events; nothing is summed across
// scenarios; the screenshot shows the lanes in distinct colours; and no
// hostile string became markup.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	rep, err := Build(context.Background(), twoScenarios(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(rep.Runs))
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := HTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if err := os.WriteFile(page, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("ZgotmplZ")) {
		t.Error("html/template rejected a value (ZgotmplZ in the page)")
	}
	for _, bad := range []string{"<script", "<img", "<link", "<iframe", "<object", "url("} { // no code, nothing to fetch
		if bytes.Contains(bytes.ToLower(raw), []byte(bad)) {
			t.Errorf("page source contains %q", bad)
		}
	}

	dom := string(runChromium(t, bin, "--dump-dom", "file://"+page))
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<img") || strings.Contains(dom, "<title>pwned") {
		t.Errorf("hostile string became markup in the DOM")
	}
	if n := strings.Count(dom, "&lt;script&gt;document.title="); n < 3 {
		t.Errorf("hostile strings shown as text %d times, want 3 (error, replica, rollout reason)", n)
	}
	if !strings.Contains(dom, "<title>"+textOf(rep.Title)+"</title>") || !strings.Contains(dom, `<h1 id="title">`+textOf(rep.Title)+"</h1>") ||
		strings.Contains(rep.Title, dir) || strings.Contains(rep.Title, os.TempDir()) {
		t.Errorf("page title %q not the report's (and no temp path)", rep.Title)
	}
	for _, link := range []string{`<a href="#run-naive">naive</a>`, `<a href="#run-recommended">recommended</a>`} {
		if !strings.Contains(dom, link) {
			t.Errorf("nav lacks %s", link)
		}
	}

	requests := map[string]string{"naive": "1500", "recommended": "300"}
	for i, name := range []string{"naive", "recommended"} {
		run := rep.Runs[i]
		sec := section(dom, "run-"+name)
		if sec == "" {
			t.Errorf("no section run-%s", name)
			continue
		}
		if !strings.Contains(sec, "<h2>"+name+"</h2>") {
			t.Errorf("%s: heading missing", name)
		}
		hl := `<p class="headline`
		if run.Attribution.Failed == 0 {
			hl += ` clean`
		}
		hl += `" id="run-` + name + `-headline">` + textOf(run.Attribution.Headline) + `</p>`
		if run.Attribution.Headline == "" || !strings.Contains(sec, hl) {
			t.Errorf("%s: headline %q not shown as %s", name, run.Attribution.Headline, hl)
		}
		if !strings.Contains(sec, `<td class="n requests">`+requests[name]+`</td>`) || strings.Count(sec, `class="summary"`) != 1 {
			t.Errorf("%s: summary does not show its own %s requests", name, requests[name])
		}
		// The story comes first: headline, causes, P, then the numbers and charts.
		order := []string{`class="headline`, `class="propagation"`, `class="command"`, `class="summary"`,
			`class="chart outcomes"`, `class="chart latency"`, `class="chart lanes"`, `class="events"`}
		if run.Attribution.Failed > 0 {
			order = append(order[:1], append([]string{`class="causes"`, `class="agreement"`}, order[1:]...)...)
			order = append(order[:len(order)-1], `class="failures"`, `class="events"`)
		}
		last := -1
		for _, mark := range order {
			j := strings.Index(sec, mark)
			if j < 0 {
				t.Errorf("%s: no %s", name, mark)
				continue
			}
			if j < last {
				t.Errorf("%s: %s comes too early", name, mark)
			}
			last = j
		}
		if p := run.Attribution.Propagation; p == nil || !strings.Contains(sec, textOf(p.Implied.Command)) ||
			!strings.Contains(sec, "rollsafe check --propagation") || strings.Count(sec, "<tr>") < len(p.Targets)+1 {
			t.Errorf("%s: propagation not shown: %+v", name, p)
		}
		// Lanes say their source.
		for _, lane := range run.Lanes {
			if !strings.Contains(sec, string(lane.Kind)+" ") || !strings.Contains(sec, "("+lane.Source+")</text>") {
				t.Errorf("%s: lane %s %s not labelled with its source", name, lane.Object, lane.Source)
			}
		}
	}
	if strings.Contains(dom, `<td class="n requests">1800</td>`) || strings.Count(dom, `class="summary"`) != 2 {
		t.Errorf("a summary summed across scenarios, or not one per run")
	}

	naive, recd := section(dom, "run-naive"), section(dom, "run-recommended")
	ar := rep.Runs[0].Attribution
	if len(ar.Causes) < 2 || ar.Agreement == nil || ar.Propagation == nil || len(ar.Propagation.Targets) != 2 {
		t.Fatalf("naive attribution: %+v", ar)
	}
	for _, c := range ar.Causes {
		row := `<td class="cause">` + string(c.Cause) + `</td><td class="n">` + fmt.Sprint(c.Count)
		if !strings.Contains(naive, row) || !strings.Contains(naive, textOf(c.What)) || !strings.Contains(naive, textOf(c.Fix)) {
			t.Errorf("causes table lacks %s with its explanation", c.Cause)
		}
		if c.Rule != "" && !strings.Contains(naive, `<a class="rule" href="https://github.com/rollsafe/rollsafe/blob/main/docs/rules/`+c.Rule+`.md">`+c.Rule+`</a>`) {
			t.Errorf("no link to the rule page of %s", c.Rule)
		}
	}
	agree := fmt.Sprintf("agrees with the lab's ground truth on %.1f %% (%d of %d); %d wrongly certain", 100*ar.Agreement.Ratio,
		ar.Agreement.Agree, ar.Agreement.Compared, ar.Agreement.WronglyCertain)
	if !strings.Contains(naive, agree) {
		t.Errorf("naive: no %q", agree)
	}
	if !strings.Contains(naive, "its clock is +200 ms from the prober") {
		t.Errorf("naive: clock skew not shown (join %+v)", ar.Join)
	}
	// The failure table: scrollable, trace ids on one line, the first 200.
	total := len(rep.Runs[0].Failures)
	if total <= MaxFailureRows {
		t.Fatalf("fixture has %d failures, want more than %d", total, MaxFailureRows)
	}
	tbl := naive[strings.Index(naive, `<div class="scroll">`):]
	tbl = tbl[:strings.Index(tbl, "</table>")]
	if rows := strings.Count(tbl, "<tr>") - 1; rows != MaxFailureRows {
		t.Errorf("%d failure rows, want %d", rows, MaxFailureRows)
	}
	if !strings.Contains(naive, fmt.Sprintf("First %d of %d failed requests", MaxFailureRows, total)) {
		t.Errorf("no 'first 200 of %d' note", total)
	}
	f0 := rep.Runs[0].Failures[0]
	for _, want := range []string{`<td class="trace">` + f0.TraceID + `</td>`, `<ul class="chain">`, `<span class="src">accesslog</span>`,
		`<span class="src">kube</span>`, `<span class="src">elbv2</span>`, `<span class="conf conf-` + string(f0.Confidence) + `">`,
		"truth: " + string(f0.Truth)} {
		if !strings.Contains(tbl, want) {
			t.Errorf("failure rows lack %s", want)
		}
	}
	differs := 0
	for _, f := range rep.Runs[0].Failures[:MaxFailureRows] {
		if f.Truth != f.Cause {
			differs++
		}
	}
	if n := len(regexp.MustCompile(`<div class="truth differs">truth: [a-z_]+ ≠</div>`).FindAllString(tbl, -1)); n != differs {
		t.Errorf("%d rows marked as differing from the truth, want %d", n, differs)
	}
	if strings.Contains(recd, `class="causes"`) || strings.Contains(recd, `class="failures"`) || !strings.Contains(recd, "No failed requests") {
		t.Errorf("recommended: a causes or failures table for a run without failures")
	}

	// The screenshot: a tall window shows the naive section to its lanes.
	shot := filepath.Join(dir, "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,3000", "--hide-scrollbars", "file://"+page)
	img := decodePNG(t, shot)
	colors := colourCounts(img)
	if len(colors) < 20 || colors[[3]uint8{0x4c, 0xaf, 0x50}] == 0 || colors[[3]uint8{0xe5, 0x39, 0x35}] == 0 {
		t.Errorf("screenshot looks blank or chartless: %d colours, ok green %d, 502 red %d", len(colors),
			colors[[3]uint8{0x4c, 0xaf, 0x50}], colors[[3]uint8{0xe5, 0x39, 0x35}])
	}
	var lanes []string
	for _, st := range append(append([]legendItem{}, podStates...), targetStates...) {
		r, g, b, _ := parseHex(st.Color)
		if colors[[3]uint8{uint8(math.Round(r * 255)), uint8(math.Round(g * 255)), uint8(math.Round(b * 255))}] > 20 {
			lanes = append(lanes, st.Name)
		}
	}
	if len(lanes) < 8 {
		t.Errorf("screenshot shows only lane colours %v, want at least 8 distinct", lanes)
	}
	if keep := os.Getenv("ROLLSAFE_KEEP"); keep != "" {
		os.WriteFile(keep+".png", mustRead(shot), 0o644)
		os.WriteFile(keep+".html", raw, 0o644)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func colourCounts(img image.Image) map[[3]uint8]int {
	colors := map[[3]uint8]int{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 2 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}]++
		}
	}
	return colors
}

// Every pod state and every target state has its own colour, far enough
// from every other (CIE76 ΔE in Lab) to be told apart next to each other.
func TestStateColoursDistinct(t *testing.T) {
	all := append(append([]legendItem{}, podStates...), targetStates...)
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s.Color] {
			t.Errorf("colour %s used twice", s.Color)
		}
		seen[s.Color] = true
	}
	for _, want := range []string{"Pending", "Running", "Ready", "Terminating", "Exited", "Deleted", "ContainersReady",
		"ContainersNotReady", "NotReady", "Condition", "BackOff", "Succeeded", "Failed", "PreStop", "PreStopDone", "SIGTERM", "Killed", "Warning"} {
		if _, ok := stateColors[[2]string{"pod", want}]; !ok {
			t.Errorf("pod state %s has no colour", want)
		}
	}
	for _, want := range []string{"initial", "healthy", "unhealthy", "draining", "unused"} {
		if _, ok := stateColors[[2]string{"target", want}]; !ok {
			t.Errorf("target state %s has no colour", want)
		}
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if d := deltaE(a.Color, b.Color); d < 20 {
				t.Errorf("%s %s and %s %s too close: ΔE %.1f", a.Name, a.Color, b.Name, b.Color, d)
			}
		}
	}
	if stateColor(timeline.KindPod, "SomethingNew") == stateColor(timeline.KindPod, "SomethingElse") {
		t.Error("unknown states share a colour")
	}
}

func deltaE(x, y string) float64 {
	l1, a1, b1 := cielab(x)
	l2, a2, b2 := cielab(y)
	return math.Sqrt((l1-l2)*(l1-l2) + (a1-a2)*(a1-a2) + (b1-b2)*(b1-b2))
}

func cielab(c string) (float64, float64, float64) {
	r, g, b, _ := parseHex(c)
	lin := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	r, g, b = lin(r), lin(g), lin(b)
	x := (0.4124*r + 0.3576*g + 0.1805*b) / 0.95047
	y := 0.2126*r + 0.7152*g + 0.0722*b
	z := (0.0193*r + 0.1192*g + 0.9505*b) / 1.08883
	f := func(t float64) float64 {
		if t > 0.008856 {
			return math.Cbrt(t)
		}
		return 7.787*t + 16.0/116
	}
	return 116*f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))
}

// chromium finds Debian's chromium; without it the test skips, except in CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (Debian package chromium)")
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("chromium hung\n%s", stderr.String())
	}
	return stdout.Bytes()
}

func mustRead(p string) []byte { b, _ := os.ReadFile(p); return b }

// One unlabelled run with probe records alone: a section named "run", no
// nav, and the missing sources said; no records at all: a page that says so.
func TestHTMLOneRunAndNone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "probe.ndjson")
	w, err := timeline.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		r := &timeline.Record{Kind: timeline.KindRequest, Time: t0.Add(time.Duration(i) * 20 * time.Millisecond), Source: "probe",
			Seq: uint64(i + 1), Latency: time.Millisecond, Status: 200, Class: timeline.ClassOK, Replica: "a"}
		if i >= 20 && i < 30 {
			r.Status, r.Class, r.Replica = 502, timeline.ClassHTTP502, ""
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Build(context.Background(), []string{p}, Options{Title: "one & only"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := HTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{`<title>one &amp; only</title>`, `<section class="run" id="run-run">`, `<h2>run</h2>`,
		`class="headline"`, `class="missing"`, `<td class="n requests">50</td>`, `class="chart latency"`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(s, `<nav`) || strings.Contains(s, `class="propagation"`) {
		t.Error("a nav for one run, or a propagation without drained targets")
	}
	// The latency line breaks over the bins where nothing succeeded.
	lat := s[strings.Index(s, `class="chart latency"`):]
	lat = lat[:strings.Index(lat, "</svg>")]
	if n := strings.Count(lat, "<polyline"); n != 6 {
		t.Errorf("%d latency polylines, want 2 per percentile (a gap where every request failed)", n)
	}

	buf.Reset()
	if err := HTML(&buf, &Report{Title: "empty"}); err != nil || !strings.Contains(buf.String(), "No records in the input.") {
		t.Errorf("empty report: %v", err)
	}
}
