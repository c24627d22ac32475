package report

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"

	"github.com/rollsafe/rollsafe/timeline"
)

type classRow struct {
	Class timeline.Class
	Color string
	Count uint64
	Share string
}

type page struct {
	R       *Report
	Title   string
	Charts  []chart
	Classes []classRow
	Failed  uint64
	Share   string
}

// HTML writes the report as one self-contained page: inline CSS and SVG,
// no script, and a Content-Security-Policy that forbids every fetch, so it
// opens the same offline, from CI artifacts or mail. Every string from the
// records (server headers, error text) is escaped by html/template.
func HTML(w io.Writer, r *Report) error {
	s := scale{totalMS: float64(r.End.Sub(r.Start).Milliseconds())}
	p := page{R: r, Title: "rollsafe report: " + strings.Join(r.Files, ", ")}
	p.Charts = []chart{outcomesChart(r, s), latencyChart(r, s), replicasChart(r, s), lanesChart(r, s)}
	sum := r.Summary
	p.Failed = sum.Failed()
	p.Share = share(p.Failed, sum.Requests)
	for _, c := range classesIn(sum.Failures) {
		p.Classes = append(p.Classes, classRow{Class: c, Color: colorOf(c), Count: sum.Failures[c], Share: share(sum.Failures[c], sum.Requests)})
	}
	slices.SortStableFunc(p.Classes, func(a, b classRow) int { return int(b.Count) - int(a.Count) })
	return pageTmpl.Execute(w, p)
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
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 6px; }
.meta { color: #666; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
.legend span { margin-right: 14px; }
svg text { font-size: 11px; fill: #444; }
.err { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.states { font-size: 12px; white-space: nowrap; }
.ok { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<div class="meta">{{.R.Start.Format "2006-01-02 15:04:05.000 MST"}} to {{.R.End.Format "15:04:05.000"}} · bin {{.R.BinMS}} ms</div>

<h2>Summary</h2>
<table id="summary">
<tr><th>requests</th><td class="n">{{.R.Summary.Requests}}</td><th>ok</th><td class="n">{{.R.Summary.OK}}</td>
<th>failed</th><td class="n {{if .Failed}}bad{{else}}ok{{end}}">{{.Failed}} ({{.Share}})</td></tr>
<tr><th>p50</th><td class="n">{{f3 .R.Summary.LatencyMS.P50}} ms</td><th>p90</th><td class="n">{{f3 .R.Summary.LatencyMS.P90}} ms</td>
<th>p99</th><td class="n">{{f3 .R.Summary.LatencyMS.P99}} ms</td></tr>
<tr><th>p99.9</th><td class="n">{{f3 .R.Summary.LatencyMS.P999}} ms</td><th>max</th><td class="n">{{f3 .R.Summary.LatencyMS.Max}} ms</td>
<th>late sends</th><td class="n">{{.R.Summary.Late}}</td></tr>
</table>
{{if .Classes}}
<table id="failure-classes"><tr><th>failure class</th><th>requests</th><th>share</th></tr>
{{range .Classes}}<tr><td><span class="sw" style="background:{{.Color}}"></span>{{.Class}}</td><td class="n">{{.Count}}</td><td class="n">{{.Share}}</td></tr>
{{end}}</table>
{{end}}

{{range .Charts}}
<h2>{{.Title}}</h2>
{{if .Empty}}<p class="meta">{{.Empty}}</p>{{else}}
<svg id="{{.ID}}" xmlns="http://www.w3.org/2000/svg" width="{{f1 .W}}" height="{{f1 .H}}" viewBox="0 0 {{f1 .W}} {{f1 .H}}" role="img" aria-label="{{.Title}}">
{{range .Rects}}<rect x="{{f2 .X}}" y="{{f2 .Y}}" width="{{f2 .W}}" height="{{f2 .H}}" fill="{{.Fill}}" fill-opacity="{{f2 .Opacity}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Lines}}<polyline points="{{.Points}}" fill="none" stroke="{{.Stroke}}" stroke-width="1.5"><title>{{.Title}}</title></polyline>
{{end}}{{range .Labels}}<text x="{{f1 .X}}" y="{{f1 .Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>
{{end}}</svg>
{{if .Legend}}<div class="legend">{{range .Legend}}<span><span class="sw" style="background:{{.Color}}"></span>{{.Name}}</span>{{end}}</div>{{end}}
{{end}}
{{end}}

{{if .R.Causes}}
<h2>Attributed causes</h2>
<table id="causes"><tr><th>class</th><th>cause</th><th>requests</th></tr>
{{range .R.Causes}}<tr><td>{{.Class}}</td><td>{{.Cause}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>
{{end}}

{{if .R.Failures}}
<h2>Failed requests{{if lt (len .R.Failures) .Failed}} (first {{len .R.Failures}} of {{.Failed}}){{end}}</h2>
<table id="failures"><tr><th>at</th><th>seq</th><th>class</th><th>status</th><th>cause</th><th>replica</th><th>error</th><th>trace id</th><th>pods then</th><th>targets then</th></tr>
{{range .R.Failures}}<tr><td class="n">{{s .AtMS}}</td><td class="n">{{.Seq}}</td><td>{{.Class}}</td><td class="n">{{if .Status}}{{.Status}}{{end}}</td><td>{{.Cause}}</td><td>{{.Replica}}</td><td class="err">{{.Error}}</td><td class="err">{{.TraceID}}</td><td class="states">{{range .Pods}}<div>{{.Object}}: {{.State}}{{if .Reason}} ({{.Reason}}){{end}}</div>{{end}}</td><td class="states">{{range .Targets}}<div>{{.Object}}: {{.State}}{{if .Reason}} ({{.Reason}}){{end}}</div>{{end}}</td></tr>
{{end}}</table>
{{end}}
{{if .R.Marks}}
<h2>Events</h2>
<table id="marks"><tr><th>at</th><th>kind</th><th>object</th><th>what</th></tr>
{{range .R.Marks}}<tr><td class="n">{{s .AtMS}}</td><td>{{.Kind}}</td><td>{{.Object}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
{{end}}
<p class="meta">Files: {{range $i, $f := .R.Files}}{{if $i}}, {{end}}{{$f}}{{end}} · generated by rollsafe report</p>
</body>
</html>
`))
