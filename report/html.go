package report

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/attribution"
	"github.com/rollsafe/rollsafe/timeline"
)

// MaxFailureRows is how many failed requests the page lists per run; the
// JSON output has them all.
const MaxFailureRows = 200

// RuleURL is where a `rollsafe check` rule's page lives.
const RuleURL = "https://github.com/rollsafe/rollsafe/blob/main/docs/rules/"

type page struct {
	R     *Report
	Title string
	Runs  []runView
}

// runView is one run as the page shows it: the Run's numbers with the
// strings and rows the template prints.
type runView struct {
	R        *Run
	A        *attribution.Run // never nil
	ID, Name string
	Failed   uint64
	Share    string
	Classes  []classRow
	Causes   []causeRow
	Agree    string
	Prop     *propView
	Charts   []chart
	Failures []failureRow
	// Shown of Total failed requests are listed.
	Shown, Total int
}

type classRow struct {
	Class timeline.Class
	Color string
	Count uint64
	Share string
}

type causeRow struct {
	attribution.CauseCount
	Share   string
	RuleURL string
}

type propView struct {
	P                                   *attribution.Propagation
	Targets                             []propTarget
	Implied                             string
	Max, P95, MaxUpper, Lag, Min, Scale string
	// LowerBound: some target's figure is a lower bound (its app stopped
	// answering before the load balancer stopped routing to it).
	LowerBound bool
}

type propTarget struct {
	attribution.TargetPropagation
	Est, Bounds, After, By, Last string
}

type failureRow struct {
	Failure
	At      string
	Outcome string
	Differs bool // the lab's ground truth is another cause
	Chain   []evidenceRow
}

type evidenceRow struct {
	At, Abs, Source, What, Pos string
}

// HTML writes the report as one self-contained page: inline CSS and SVG,
// no script, and a Content-Security-Policy that forbids every fetch, so it
// opens the same offline, from CI artifacts or mail. Every string from the
// records (server headers, error text) is escaped by html/template.
//
// The page tells each run's story first — its headline, the causes with
// the setting that prevents each, how often the evidence-only attribution
// agrees with the lab's ground truth, the measured propagation P and the
// preStop it implies — then its numbers, charts, failed requests and events.
func HTML(w io.Writer, r *Report) error {
	p := page{R: r, Title: r.Title}
	if p.Title == "" {
		p.Title = "rollsafe report"
	}
	ids := map[string]int{}
	for _, run := range r.Runs {
		p.Runs = append(p.Runs, view(run, uniqueID(ids, run.Scenario)))
	}
	return pageTmpl.Execute(w, p)
}

// runName is a run's heading: its scenario, or "run".
func runName(scenario string) string {
	if scenario == "" {
		return "run"
	}
	return scenario
}

// uniqueID is "run-" and the scenario's name cut to letters, digits, '-'
// and '_' (anything else becomes '-'), numbered if taken.
func uniqueID(taken map[string]int, scenario string) string {
	var b strings.Builder
	b.WriteString("run-")
	for _, c := range runName(scenario) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	id := b.String()
	taken[id]++
	if n := taken[id]; n > 1 {
		id = fmt.Sprintf("%s-%d", id, n)
		taken[id]++
	}
	return id
}

func view(r *Run, id string) runView {
	v := runView{R: r, A: r.Attribution, ID: id, Name: runName(r.Scenario)}
	if v.A == nil {
		v.A = &attribution.Run{Scenario: r.Scenario}
	}
	if r.Summary != nil {
		sum := r.Summary
		v.Failed = sum.Failed()
		v.Share = share(v.Failed, sum.Requests)
		for _, c := range classesIn(sum.Failures) {
			v.Classes = append(v.Classes, classRow{Class: c, Color: colorOf(c), Count: sum.Failures[c], Share: share(sum.Failures[c], sum.Requests)})
		}
		slices.SortStableFunc(v.Classes, func(a, b classRow) int { return int(b.Count) - int(a.Count) })
	}
	for _, c := range v.A.Causes {
		row := causeRow{CauseCount: c, Share: share(c.Count, v.A.Failed)}
		if c.Rule != "" {
			row.RuleURL = RuleURL + c.Rule + ".md"
		}
		v.Causes = append(v.Causes, row)
	}
	if ag := v.A.Agreement; ag != nil && ag.Compared > 0 {
		v.Agree = fmt.Sprintf("Evidence-only attribution agrees with the lab's ground truth on %.1f %% (%d of %d); %d wrongly certain.",
			100*ag.Ratio, ag.Agree, ag.Compared, ag.WronglyCertain)
	}
	if p := v.A.Propagation; p != nil {
		v.Prop = propagationView(r, p)
	}
	v.Charts = runCharts(r, id)
	v.Total = len(r.Failures)
	v.Shown = min(v.Total, MaxFailureRows)
	for _, f := range r.Failures[:v.Shown] {
		v.Failures = append(v.Failures, rowOf(r, f))
	}
	return v
}

// offset is t as seconds from the run's start, as the charts' axes count.
func offset(r *Run, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmt.Sprintf("%.3fs", t.Sub(r.Start).Seconds())
}

func seconds(s float64) string { return fmt.Sprintf("%.2f s", s) }

func propagationView(r *Run, p *attribution.Propagation) *propView {
	pv := &propView{P: p, Max: seconds(p.MaxSeconds), P95: seconds(p.P95Seconds), MaxUpper: seconds(p.MaxUpperSeconds),
		Lag: seconds(p.ControllerLagSeconds), Min: seconds(p.Implied.MinPreStopSeconds)}
	im := p.Implied
	pv.Implied = fmt.Sprintf("preStop ≥ controller lag %g s + P %g s + margin %g s = %g s", im.ControllerLagSeconds,
		im.PropagationSeconds, im.MarginSeconds, im.MinPreStopSeconds)
	if im.TimeScale > 0 && im.TimeScale != 1 {
		pv.Scale = fmt.Sprintf("The lab ran with time scaled by %g: the settings above are in real (spec) time, the measured figures in the lab's.", im.TimeScale)
	}
	for _, t := range p.Targets {
		pt := propTarget{TargetPropagation: t, Est: seconds(t.Seconds),
			Bounds: fmt.Sprintf("%.2f–%.2f s", t.MinSeconds, t.MaxSeconds),
			After:  offset(r, t.DeregisteredAfter), By: offset(r, t.DeregisteredBy), Last: offset(r, t.LastRouted)}
		if t.LowerBound {
			pt.Est = "≥ " + pt.Est
			pv.LowerBound = true
		}
		pv.Targets = append(pv.Targets, pt)
	}
	return pv
}

func rowOf(r *Run, f Failure) failureRow {
	fr := failureRow{Failure: f, At: fmt.Sprintf("%.3fs", f.AtMS/1000), Outcome: string(f.Class),
		Differs: f.Truth != "" && f.Truth != f.Cause}
	if f.Status != 0 {
		fr.Outcome = fmt.Sprintf("%s (%d)", f.Class, f.Status)
	}
	// The chain in time order; attribution puts every time on the prober's
	// clock, as the charts are (an access-log time less the estimated skew).
	type fact struct {
		at time.Time
		evidenceRow
	}
	var facts []fact
	for _, e := range f.Evidence {
		at, abs := e.Time, e.Time.UTC().Format("2006-01-02 15:04:05.000 UTC")
		pos := e.At
		if i := strings.LastIndexAny(pos, `/\`); i >= 0 {
			pos = pos[i+1:] // file:line; the full path is in the tooltip
		}
		if e.At != "" {
			abs += " · " + e.At
		}
		facts = append(facts, fact{at, evidenceRow{At: offset(r, at), Abs: abs, Source: e.Source, What: e.What, Pos: pos}})
	}
	slices.SortStableFunc(facts, func(x, y fact) int { return x.at.Compare(y.at) })
	for _, f := range facts {
		fr.Chain = append(fr.Chain, f.evidenceRow)
	}
	return fr
}

func share(n, of uint64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.3g%%", 100*float64(n)/float64(of))
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2": func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f3": func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"s":  func(v float64) string { return fmt.Sprintf("%.3fs", v/1000) },
	"ms": func(v float64) string { return fmt.Sprintf("%+.0f ms", v) },
	"fs": func(v float64) string {
		if v <= 0 {
			return ""
		}
		return fmt.Sprintf("%g", v)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 22px 0 6px; }
.meta, .note { color: #666; }
nav.runs ul { margin: 8px 0 0; padding-left: 20px; }
nav.runs li { margin: 2px 0; }
section.run { border-top: 3px solid #333; margin-top: 28px; padding-top: 14px; }
.headline { font-size: 21px; font-weight: 600; margin: 8px 0 10px; padding: 8px 12px; border-left: 6px solid #c62828; background: #fdf1f1; }
.headline.clean { border-left-color: #2e7d32; background: #f1f8f1; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.causes td.what, table.causes td.fix { max-width: 34em; }
.cause { font-family: ui-monospace, monospace; font-size: 12.5px; white-space: nowrap; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; border: 1px solid rgba(0,0,0,.25); }
.legend { margin: 2px 0; font-size: 12.5px; }
.legend b { font-weight: 600; margin-right: 8px; }
.legend span { margin-right: 12px; white-space: nowrap; }
svg text { font-size: 11px; fill: #444; }
code { font-family: ui-monospace, monospace; font-size: 12.5px; }
code.command { display: inline-block; padding: 4px 8px; background: #f4f4f4; border: 1px solid #ddd; user-select: all; white-space: pre; }
.agreement { font-weight: 600; }
.missing { margin: 4px 0; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid #eee; }
.scroll table { margin: 0; }
table.failures { font-size: 12.5px; }
table.failures td { white-space: nowrap; }
table.failures td.err { white-space: normal; min-width: 14em; max-width: 26em; overflow-wrap: anywhere; font-family: ui-monospace, monospace; }
table.failures td.chain { font-size: 12px; line-height: 1.35; }
table.failures td.reason { white-space: normal; min-width: 22em; max-width: 30em; color: #555; }
table.failures td.states { font-size: 11.5px; line-height: 1.3; }
.join-note { font-weight: 600; }
.settle { margin-top: 2px; }
.trace { font-family: ui-monospace, monospace; white-space: nowrap; }
ul.chain { list-style: none; margin: 0; padding: 0; }
ul.chain li { margin: 0 0 2px; }
ul.chain .src { font-weight: 600; }
.pos { color: #666; font-family: ui-monospace, monospace; }
.conf { font-size: 11.5px; padding: 0 4px; border-radius: 3px; }
.conf-certain { color: #1b5e20; background: #e8f5e9; } .conf-likely { color: #e65100; background: #fff3e0; } .conf-unknown { color: #555; background: #eee; }
.truth.differs { color: #c62828; font-weight: 600; }
.small { font-size: 12px; color: #555; }
.ok { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
</style>
</head>
<body>
<header>
<h1 id="title">{{.Title}}</h1>
<div class="meta">{{if not .R.Start.IsZero}}{{.R.Start.Format "2006-01-02 15:04:05.000 MST"}} to {{.R.End.Format "15:04:05.000"}} · {{end}}{{len .Runs}} run{{if ne (len .Runs) 1}}s{{end}}{{with .R.AccessLog}} · access logs: {{.Files}} file{{if ne .Files 1}}s{{end}}, {{.Entries}} entries{{if .BadLines}}, {{.BadLines}} bad lines{{end}}{{end}}</div>
{{if gt (len .Runs) 1}}<nav class="runs" id="runs"><ul>
{{range .Runs}}<li><a href="#{{.ID}}">{{.Name}}</a>: {{.A.Headline}}</li>
{{end}}</ul></nav>{{end}}
</header>
{{if not .Runs}}<p class="note">No records in the input.</p>{{end}}

{{range .Runs}}{{$run := .}}
<section class="run" id="{{.ID}}">
<h2>{{.Name}}</h2>
<div class="meta">{{.R.Start.Format "2006-01-02 15:04:05.000 MST"}} to {{.R.End.Format "15:04:05.000"}}{{if .A.Rollouts}} · {{.A.Rollouts}} rollout{{if ne .A.Rollouts 1}}s{{end}}{{end}}{{if .A.Sources}} · evidence: {{range $i, $s := .A.Sources}}{{if $i}}, {{end}}{{$s}}{{end}}{{end}}</div>
<p class="headline{{if not .A.Failed}} clean{{end}}" id="{{.ID}}-headline">{{.A.Headline}}</p>

{{if .Causes}}
<table class="causes" id="{{.ID}}-causes">
<tr><th>cause</th><th>failed</th><th>certain</th><th>likely</th><th>what happened</th><th>what prevents it</th><th>rule</th></tr>
{{range .Causes}}<tr><td class="cause">{{.Cause}}</td><td class="n">{{.Count}} <span class="small">({{.Share}})</span></td><td class="n">{{.Certain}}</td><td class="n">{{.Likely}}</td><td class="what">{{.What}}</td><td class="fix">{{.Fix}}</td><td>{{if .RuleURL}}<a class="rule" href="{{.RuleURL}}">{{.Rule}}</a>{{end}}</td></tr>
{{end}}</table>
{{else if .A.Requests}}<p class="note">No failed requests: nothing to attribute.</p>{{end}}
{{if .Agree}}<p class="agreement" id="{{.ID}}-agreement">{{.Agree}}</p>{{end}}
{{if .A.Missing}}<div class="missing" id="{{.ID}}-missing">Evidence that would sharpen this:<ul>{{range .A.Missing}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{with .A.Join}}{{if or .AccessLogEntries .Note}}<p class="join" id="{{$run.ID}}-join">Access log: {{if .AccessLogEntries}}{{.AccessLogEntries}} entries; by trace id, {{.FailedJoined}} failed requests found their line, and {{.SampledJoined}} of {{.Sampled}} sampled successful ones{{if or .SampledJoined .FailedJoined}}; its clock is {{ms .ClockSkewMS}} from the prober's (taken out){{end}}.{{else}}none for this run.{{end}}{{if .Note}} <span class="join-note">{{.Note}}.</span>{{end}}</p>{{end}}{{end}}

{{with .Prop}}
<div class="propagation" id="{{$run.ID}}-propagation">
<h3>Propagation P, measured on this load balancer</h3>
<p>How long the load balancer kept routing new requests to a target after it was deregistered.</p>
<table class="propagation-figures"><tr><th>max P</th><td class="n">{{.Max}}</td><th>p95 P</th><td class="n">{{.P95}}</td><th>max upper bound</th><td class="n">{{.MaxUpper}}</td><th>controller lag</th><td class="n">{{.Lag}}</td></tr></table>
<table class="propagation-targets"><tr><th>target</th><th>pod</th><th>P</th><th>bounds</th><th>deregistered after</th><th>by</th><th>last routed</th><th>via</th><th>note</th></tr>
{{range .Targets}}<tr><td class="trace">{{.Target}}</td><td>{{.Pod}}</td><td class="n">{{.Est}}</td><td class="n">{{.Bounds}}</td><td class="n">{{.After}}</td><td class="n">{{.By}}</td><td class="n">{{.Last}}</td><td>{{.Via}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>
{{if .LowerBound}}<p class="note">≥: a lower bound, for the reason in its note: the true P may be longer.</p>{{end}}
<p class="implied">These figures call for <b>{{.Implied}}</b>. Check the manifests with them:</p>
<p><code class="command">{{.P.Implied.Command}}</code></p>
{{if .Scale}}<p class="note">{{.Scale}}</p>{{end}}
</div>
{{end}}

<h3>Summary</h3>
{{with .R.Summary}}
<table class="summary" id="{{$run.ID}}-summary">
<tr><th>requests</th><td class="n requests">{{.Requests}}</td><th>ok</th><td class="n">{{.OK}}</td>
<th>failed</th><td class="n {{if $run.Failed}}bad{{else}}ok{{end}}">{{$run.Failed}} ({{$run.Share}})</td></tr>
<tr><th>p50</th><td class="n">{{f3 .LatencyMS.P50}} ms</td><th>p90</th><td class="n">{{f3 .LatencyMS.P90}} ms</td>
<th>p99</th><td class="n">{{f3 .LatencyMS.P99}} ms</td></tr>
<tr><th>p99.9</th><td class="n">{{f3 .LatencyMS.P999}} ms</td><th>max</th><td class="n">{{f3 .LatencyMS.Max}} ms</td>
<th>late sends</th><td class="n">{{.Late}}</td></tr>
</table>
<p class="small">Latency of every request, failed ones included, as the prober reports it; the chart below shows the successful ones'.</p>
{{with .HiddenRetries}}<p class="note hidden-retries">Note: {{.}}.</p>{{end}}
{{end}}
{{if .Classes}}
<table class="failure-classes" id="{{.ID}}-failure-classes"><tr><th>failure class</th><th>requests</th><th>share</th></tr>
{{range .Classes}}<tr><td><span class="sw" style="background:{{.Color}}"></span>{{.Class}}</td><td class="n">{{.Count}}</td><td class="n">{{.Share}}</td></tr>
{{end}}</table>
{{end}}

{{range .Charts}}
<h3>{{.Title}}</h3>
{{if .Empty}}<p class="meta">{{.Empty}}</p>{{else}}
<svg id="{{.ID}}" class="chart {{.Class}}" xmlns="http://www.w3.org/2000/svg" width="{{f1 .W}}" height="{{f1 .H}}" viewBox="0 0 {{f1 .W}} {{f1 .H}}" role="img" aria-label="{{.Title}}">
{{range .Rects}}<rect x="{{f2 .X}}" y="{{f2 .Y}}" width="{{f2 .W}}" height="{{f2 .H}}" fill="{{.Fill}}" fill-opacity="{{f2 .Opacity}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Lines}}<polyline points="{{.Points}}" fill="none" stroke="{{.Stroke}}" stroke-width="1.5"><title>{{.Title}}</title></polyline>
{{end}}{{range .Labels}}<text x="{{f1 .X}}" y="{{f1 .Y}}" text-anchor="{{.Anchor}}"{{if .Fill}} style="fill:{{.Fill}}"{{end}}{{with fs .Size}} font-size="{{.}}"{{end}}>{{.Text}}</text>
{{end}}</svg>
{{range .Legends}}<div class="legend"><b>{{.Name}}</b>{{range .Items}}<span><span class="sw" style="background:{{.Color}}"></span>{{.Name}}</span>{{end}}</div>
{{end}}{{end}}
{{end}}

{{if .Failures}}
<h3>Failed requests</h3>
{{if lt .Shown .Total}}<p class="note failures-cap">First {{.Shown}} of {{.Total}} failed requests; <code>rollsafe report --output json</code> lists them all.</p>{{end}}
<div class="scroll">
<table class="failures" id="{{.ID}}-failures"><tr><th>at</th><th>seq</th><th>outcome</th><th>cause · confidence</th><th>target · pod</th><th>trace id</th><th>evidence (time · source · what)</th><th>why not certain</th><th>error</th><th>pods then</th><th>targets then</th></tr>
{{range .Failures}}<tr><td class="n">{{.At}}</td><td class="n">{{if .Seq}}{{.Seq}}{{end}}</td><td>{{.Outcome}}</td>
<td><span class="cause">{{.Cause}}</span> <span class="conf conf-{{.Confidence}}">{{.Confidence}}</span>{{if .Truth}}<div class="truth{{if .Differs}} differs{{end}}">truth: {{.Truth}}{{if .Differs}} ≠{{end}}</div>{{end}}</td>
<td>{{if .Target}}<span class="trace">{{.Target}}</span>{{end}}{{if .Pod}}<div>{{.Pod}}</div>{{end}}</td>
<td class="trace">{{.TraceID}}</td>
<td class="chain"><ul class="chain">{{range .Chain}}<li title="{{.Abs}}">{{.At}} · <span class="src">{{.Source}}</span> · {{.What}}{{if .Pos}} <span class="pos">{{.Pos}}</span>{{end}}</li>{{end}}</ul></td>
<td class="reason">{{if ne (print .Confidence) "certain"}}{{.Reason}}{{if .Settle}}<div class="settle">would settle: {{.Settle}}</div>{{end}}{{end}}</td>
<td class="err">{{.Error}}</td>
<td class="states">{{range .Pods}}<div>{{.Object}}{{if .Source}} ({{.Source}}){{end}}: {{.State}}{{if .Reason}} ({{.Reason}}){{end}}</div>{{end}}</td>
<td class="states">{{range .Targets}}<div>{{.Object}}{{if .Source}} ({{.Source}}){{end}}: {{.State}}{{if .Reason}} ({{.Reason}}){{end}}</div>{{end}}</td></tr>
{{end}}</table>
</div>
{{end}}

{{if .R.Marks}}
<h3>Events</h3>
<table class="events" id="{{.ID}}-events"><tr><th>at</th><th>kind</th><th>object</th><th>what</th></tr>
{{range .R.Marks}}<tr><td class="n">{{s .AtMS}}</td><td>{{.Kind}}</td><td>{{.Object}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
{{end}}
</section>
{{end}}
<footer><p class="meta">Files: {{range $i, $f := .R.Files}}{{if $i}}, {{end}}{{$f}}{{end}} · generated by rollsafe report</p></footer>
</body>
</html>
`))
