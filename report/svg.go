package report

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rollsafe/rollsafe/timeline"
)

// The charts are plain SVG shapes computed here; the template only prints
// them (escaping every string), so the HTML needs no script and no fetch.

type rect struct {
	X, Y, W, H float64
	Fill       string
	Opacity    float64
	Title      string
}

type polyline struct {
	Points string
	Stroke string
	Title  string
}

type label struct {
	X, Y   float64
	Text   string
	Anchor string
	Fill   string // default: the stylesheet's
	Size   float64
}

type chart struct {
	ID, Class, Title string
	W, H             float64
	Rects            []rect
	Lines            []polyline
	Labels           []label
	Legends          []legend
	Empty            string // shown instead when there is nothing to draw
}

// legend is one row of swatches under a chart ("pod states: …").
type legend struct {
	Name  string
	Items []legendItem
}

type legendItem struct{ Name, Color string }

const (
	plotLeft  = 250.0
	plotWidth = 900.0
	chartW    = plotLeft + plotWidth + 20
	rowH      = 20.0
	labelMax  = 40 // runes of a row label before it is shortened
	// seam widens the bars of adjacent bins a little, so anti-aliasing
	// leaves no light line between them.
	seam = 0.4
)

var classColor = map[timeline.Class]string{
	timeline.ClassOK: "#4caf50", timeline.ClassHTTP500: "#8e24aa", timeline.ClassHTTP502: "#e53935",
	timeline.ClassHTTP503: "#fb8c00", timeline.ClassHTTP504: "#c62828", timeline.ClassHTTP5xx: "#6d4c41",
	timeline.ClassHTTP4xx: "#fdd835", timeline.ClassConnRefused: "#1e88e5", timeline.ClassConnReset: "#3949ab",
	timeline.ClassEOF: "#00897b", timeline.ClassTimeout: "#212121", timeline.ClassTLS: "#d81b60",
	timeline.ClassDNS: "#5e35b1", timeline.ClassOther: "#757575",
}

func colorOf(c timeline.Class) string {
	if col, ok := classColor[c]; ok {
		return col
	}
	return classColor[timeline.ClassOther]
}

// podStates and targetStates give every state a pod or a target can be in
// its own colour, at least ΔE 20 (CIE76) from every other state's, mostly
// Kelly's colours of maximum contrast: greens while a pod starts and
// serves, oranges and pinks on the way out, reds when it is signalled or
// killed, purples once it has exited, grey once deleted; targets in blues
// and teal, so a target lane does not look like a pod lane. The order is the
// legend's. Pod states are observe/kube's (Pending … Deleted) and the
// kubelet stand-in's ground truth (kubelet/state.go); target states are the
// ELBv2 TargetHealth states.
var podStates = []legendItem{
	{"Pending", "#f3c300"},
	{"Running", "#b5d99c"},
	{"ContainersReady", "#8db600"},
	{"Ready", "#008856"},
	{"Condition", "#c2b280"},
	{"NotReady", "#ffb0c8"},
	{"ContainersNotReady", "#f99379"},
	{"BackOff", "#654522"},
	{"Terminating", "#f38400"},
	{"PreStop", "#d678c8"},
	{"PreStopDone", "#b3446c"},
	{"SIGTERM", "#e25822"},
	{"Killed", "#be0032"},
	{"Exited", "#875692"},
	{"Succeeded", "#2b2b7a"},
	{"Failed", "#882d17"},
	{"Warning", "#6b8e23"},
	{"Deleted", "#848482"},
}

var targetStates = []legendItem{
	{"initial", "#a1caf1"},
	{"healthy", "#0067a5"},
	{"unhealthy", "#222222"},
	{"draining", "#00a5a5"},
	{"unused", "#dadada"},
}

var stateColors = func() map[[2]string]string {
	m := map[[2]string]string{}
	for _, s := range podStates {
		m[[2]string{string(timeline.KindPod), s.Name}] = s.Color
	}
	for _, s := range targetStates {
		m[[2]string{string(timeline.KindTarget), s.Name}] = s.Color
	}
	return m
}()

// stateColor is the colour of a pod's or a target's state. A state outside
// the lists above (a newer source's) still gets a colour of its own, from
// its name, in a muted range the lists do not use.
func stateColor(kind timeline.Kind, state string) string {
	if c, ok := stateColors[[2]string{string(kind), state}]; ok {
		return c
	}
	h := fnv.New32a()
	h.Write([]byte(state))
	v := h.Sum32()
	return hsl(float64(v%360), 0.25+float64(v>>9%20)/100, 0.55+float64(v>>17%15)/100)
}

func hsl(h, s, l float64) string {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	var r, g, b float64
	switch {
	case h < 60:
		r, g = c, x
	case h < 120:
		r, g = x, c
	case h < 180:
		g, b = c, x
	case h < 240:
		g, b = x, c
	case h < 300:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := l - c/2
	return fmt.Sprintf("#%02x%02x%02x", int((r+m)*255+0.5), int((g+m)*255+0.5), int((b+m)*255+0.5))
}

// inkOn is black or white, whichever reads better on the colour.
func inkOn(color string) string {
	r, g, b, ok := parseHex(color)
	if !ok {
		return "#000"
	}
	lin := func(v float64) float64 {
		if v <= 0.03928 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	lum := 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
	if lum > 0.3 {
		return "#000"
	}
	return "#fff"
}

func parseHex(c string) (r, g, b float64, ok bool) {
	if len(c) != 7 || c[0] != '#' {
		return 0, 0, 0, false
	}
	v, err := strconv.ParseUint(c[1:], 16, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	return float64(v>>16&0xff) / 255, float64(v>>8&0xff) / 255, float64(v&0xff) / 255, true
}

type scale struct{ totalMS float64 }

func (s scale) x(ms float64) float64 {
	if s.totalMS <= 0 {
		return plotLeft
	}
	return plotLeft + ms/s.totalMS*plotWidth
}

func (s scale) w(ms float64) float64 { return max(s.x(ms)-plotLeft, 0.5) }

func secLabel(ms float64) string { return fmt.Sprintf("%.1fs", ms/1000) }

// axis adds time ticks under a plot of height h, at round seconds (a step
// of 1, 2 or 5 times a power of ten, at most 12 ticks).
// axisRoom is the height under a plot that its time axis takes.
const axisRoom = 40.0

// newChart is the chart id-class, its plot h high with the time axis below.
func newChart(id, class, title string, h float64) chart {
	return chart{ID: id + "-" + class, Class: class, Title: title, W: chartW, H: h + axisRoom}
}

// rowsChart is a newChart with one row rowH high per item, drawn by draw
// (given the plot's height) above the time axis; with no rows it says empty
// instead.
func rowsChart(id, class, title string, rows int, empty string, s scale, draw func(c *chart, h float64)) chart {
	h := rowH * float64(rows)
	c := newChart(id, class, title, h)
	if rows == 0 {
		c.Empty = empty
		return c
	}
	draw(&c, h)
	axis(&c, s, h)
	return c
}

// rowBaseline is where a row's text sits, below the row's top.
const rowBaseline = 14.0

// rowTop is the y of row i's top edge.
func rowTop(i int) float64 { return float64(i) * rowH }

// rowName labels row i, right-aligned left of the plot.
func rowName(i int, name string) label {
	return label{X: plotLeft - 6, Y: rowTop(i) + rowBaseline, Text: name, Anchor: "end"}
}

// rowBar is a bar in row i from x, w wide, 2 px inside the row's edges so
// that neighbouring rows stay apart.
func rowBar(i int, x, w float64, fill string, opacity float64, title string) rect {
	return rect{X: x, Y: rowTop(i) + 2, W: w, H: rowH - 4, Fill: fill, Opacity: opacity, Title: title}
}

func axis(c *chart, s scale, h float64) {
	step := tickStep(s.totalMS)
	for ms := 0.0; ms <= s.totalMS+step/1000; ms += step {
		c.Labels = append(c.Labels, label{X: s.x(ms), Y: h + 14, Text: tickLabel(ms, step), Anchor: "middle"})
		c.Rects = append(c.Rects, rect{X: s.x(ms), Y: h, W: 1, H: 3, Fill: "#888", Opacity: 1})
	}
}

func tickStep(totalMS float64) float64 {
	if totalMS <= 0 {
		return 1000
	}
	for p := 1.0; ; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if totalMS/(m*p) <= 11 {
				return m * p
			}
		}
	}
}

func tickLabel(ms, step float64) string {
	switch {
	case step >= 1000:
		return fmt.Sprintf("%gs", math.Round(ms/1000))
	case step >= 100:
		return fmt.Sprintf("%.1fs", ms/1000)
	case step >= 10:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return fmt.Sprintf("%.3fs", ms/1000)
}

// runCharts are a run's charts, their ids prefixed with the run's.
func runCharts(r *Run, id string) []chart {
	s := scale{totalMS: float64(r.End.Sub(r.Start)) / 1e6}
	return []chart{outcomesChart(r, s, id), latencyChart(r, s, id), replicasChart(r, s, id), lanesChart(r, s, id)}
}

func outcomesChart(r *Run, s scale, id string) chart {
	const h = 160.0
	c := newChart(id, "outcomes", fmt.Sprintf("Requests per %g ms by outcome", r.BinMS), h)
	var top uint64
	for _, b := range r.Bins {
		top = max(top, b.Requests)
	}
	if top == 0 {
		c.Empty = "no request records"
		return c
	}
	used := map[timeline.Class]bool{}
	for _, b := range r.Bins {
		if b.Requests == 0 {
			continue
		}
		y := h
		stack := func(cl timeline.Class, n uint64) {
			if n == 0 {
				return
			}
			used[cl] = true
			ht := float64(n) / float64(top) * (h - 12)
			y -= ht
			c.Rects = append(c.Rects, rect{X: s.x(b.AtMS), Y: y, W: s.w(r.BinMS) + seam, H: ht, Fill: colorOf(cl), Opacity: 1,
				Title: fmt.Sprintf("%s–%s: %d %s", secLabel(b.AtMS), secLabel(b.AtMS+r.BinMS), n, cl)})
		}
		stack(timeline.ClassOK, b.OK)
		for _, cl := range classesIn(b.Failures) {
			stack(cl, b.Failures[cl])
			// A tick on top so one failure among thousands still shows.
			c.Rects = append(c.Rects, rect{X: s.x(b.AtMS), Y: 0, W: max(s.w(r.BinMS), 2), H: 8, Fill: colorOf(cl), Opacity: 1,
				Title: fmt.Sprintf("%s: %d %s", secLabel(b.AtMS), b.Failures[cl], cl)})
		}
	}
	lg := legend{Name: "outcome"}
	for _, cl := range append([]timeline.Class{timeline.ClassOK}, timeline.FailureClasses...) {
		if used[cl] {
			lg.Items = append(lg.Items, legendItem{Name: string(cl), Color: colorOf(cl)})
		}
	}
	c.Legends = []legend{lg}
	c.Labels = append(c.Labels, label{X: plotLeft - 6, Y: 14, Text: fmt.Sprintf("%d", top), Anchor: "end"},
		label{X: plotLeft - 6, Y: h, Text: "0", Anchor: "end"})
	marks(&c, r, s, h)
	axis(&c, s, h)
	return c
}

// classesIn lists the classes of m in report order, unknown ones last.
func classesIn(m map[timeline.Class]uint64) []timeline.Class {
	var out []timeline.Class
	for _, cl := range timeline.FailureClasses {
		if m[cl] > 0 {
			out = append(out, cl)
		}
	}
	for cl, n := range m {
		if _, known := classColor[cl]; !known && n > 0 {
			out = append(out, cl)
		}
	}
	return out
}

func marks(c *chart, r *Run, s scale, h float64) {
	for _, m := range r.Marks {
		if !m.Line {
			continue
		}
		c.Rects = append(c.Rects, rect{X: s.x(m.AtMS), Y: 0, W: 1, H: h, Fill: "#555", Opacity: 0.6,
			Title: fmt.Sprintf("%s %s %s %s", secLabel(m.AtMS), m.Kind, m.Object, m.Text)})
	}
}

// latencyChart draws the successful requests' percentiles per bin. A bin
// with no successful request has no point: its line breaks there rather
// than dropping to 0.
func latencyChart(r *Run, s scale, id string) chart {
	const h = 140.0
	c := newChart(id, "latency", "Latency of successful requests (ms) per bin", h)
	top := 0.0
	answered := 0
	for _, b := range r.Bins {
		if b.OK > 0 {
			answered++
			top = max(top, b.P99)
		}
	}
	if answered == 0 {
		c.Empty = "no successful request"
		return c
	}
	if top <= 0 {
		top = 1
	}
	series := []struct {
		name  string
		color string
		get   func(Bin) float64
	}{
		{"p50", "#1e88e5", func(b Bin) float64 { return b.P50 }},
		{"p90", "#fb8c00", func(b Bin) float64 { return b.P90 }},
		{"p99", "#e53935", func(b Bin) float64 { return b.P99 }},
	}
	lg := legend{Name: "percentile"}
	for _, se := range series {
		var pts strings.Builder
		n := 0
		flush := func() {
			if n == 1 { // a lone point: a short dash so it shows
				p := strings.TrimSpace(pts.String())
				x, y, _ := strings.Cut(p, ",")
				xv, _ := strconv.ParseFloat(x, 64)
				pts.Reset()
				fmt.Fprintf(&pts, "%.1f,%s %.1f,%s", xv-1.5, y, xv+1.5, y)
			}
			if n > 0 {
				c.Lines = append(c.Lines, polyline{Points: strings.TrimSpace(pts.String()), Stroke: se.color, Title: se.name})
			}
			pts.Reset()
			n = 0
		}
		for _, b := range r.Bins {
			if b.OK == 0 {
				flush()
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", s.x(b.AtMS+r.BinMS/2), h-se.get(b)/top*(h-10))
			n++
		}
		flush()
		lg.Items = append(lg.Items, legendItem{Name: se.name, Color: se.color})
	}
	c.Legends = []legend{lg}
	c.Labels = append(c.Labels, label{X: plotLeft - 6, Y: 14, Text: fmt.Sprintf("%.1f ms", top), Anchor: "end"},
		label{X: plotLeft - 6, Y: h, Text: "0", Anchor: "end"})
	axis(&c, s, h)
	return c
}

func replicasChart(r *Run, s scale, id string) chart {
	return rowsChart(id, "replicas", "Replicas that answered (share of each bin)", len(r.Replicas), "no replica header in the records", s, func(c *chart, _ float64) {
		replicaRows(c, r, s)
	})
}

// replicaRows draws one row per replica, each bin shaded by the share of
// its requests that replica answered.
func replicaRows(c *chart, r *Run, s scale) {
	for i, name := range r.Replicas {
		c.Labels = append(c.Labels, rowName(i, clip(name, labelMax)))
		for _, b := range r.Bins {
			n := b.Replicas[name]
			if n == 0 {
				continue
			}
			c.Rects = append(c.Rects, rowBar(i, s.x(b.AtMS), s.w(r.BinMS), "#3949ab",
				0.15+0.85*float64(n)/float64(b.Requests), fmt.Sprintf("%s %s: %d of %d", secLabel(b.AtMS), name, n, b.Requests)))
		}
	}
}

// lanesChart draws one lane per pod or target and source, every state in
// its own colour, with its name inside the segment where it fits.
func lanesChart(r *Run, s scale, id string) chart {
	return rowsChart(id, "lanes", "Pod and target states", len(r.Lanes), "no pod or target records in the input", s, func(c *chart, h float64) {
		laneRows(c, r, s)
		marks(c, r, s, h)
	})
}

// laneRows draws the lanes and their states' legends.
func laneRows(c *chart, r *Run, s scale) {
	used := map[[2]string]bool{}
	for i, l := range r.Lanes {
		name := string(l.Kind) + " " + l.Object
		if l.Source != "" {
			name = clip(name, labelMax-len(l.Source)-3) + " (" + l.Source + ")"
		} else {
			name = clip(name, labelMax)
		}
		c.Labels = append(c.Labels, rowName(i, name))
		for _, sg := range l.Segments {
			title := fmt.Sprintf("%s %s (%s): %s from %s to %s", l.Kind, l.Object, orNone(l.Source), sg.State, secLabel(sg.FromMS), secLabel(sg.ToMS))
			if sg.Reason != "" {
				title += " (" + sg.Reason + ")"
			}
			col := stateColor(l.Kind, sg.State)
			x, w := s.x(sg.FromMS), s.w(sg.ToMS-sg.FromMS)
			c.Rects = append(c.Rects, rowBar(i, x, w, col, 1, title))
			if fits := float64(len(sg.State))*6 + 6; w >= fits {
				c.Labels = append(c.Labels, label{X: x + 3, Y: rowTop(i) + rowBaseline, Text: sg.State, Anchor: "start", Fill: inkOn(col), Size: 10})
			}
			used[[2]string{string(l.Kind), sg.State}] = true
		}
	}
	c.Legends = stateLegends(used)
}

// stateLegends lists the states drawn, pods' then targets', in the lists'
// order, unknown states last.
func stateLegends(used map[[2]string]bool) []legend {
	var out []legend
	for _, k := range []struct {
		kind   timeline.Kind
		name   string
		states []legendItem
	}{{timeline.KindPod, "pod states", podStates}, {timeline.KindTarget, "target states", targetStates}} {
		lg := legend{Name: k.name}
		known := map[string]bool{}
		for _, st := range k.states {
			known[st.Name] = true
			if used[[2]string{string(k.kind), st.Name}] {
				lg.Items = append(lg.Items, st)
			}
		}
		var other []string
		for u := range used {
			if u[0] == string(k.kind) && !known[u[1]] {
				other = append(other, u[1])
			}
		}
		slices.Sort(other)
		for _, st := range other {
			lg.Items = append(lg.Items, legendItem{Name: st, Color: stateColor(k.kind, st)})
		}
		if len(lg.Items) > 0 {
			out = append(out, lg)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "no source"
	}
	return s
}

// clip shortens a label longer than n runes, keeping both ends.
func clip(s string, n int) string {
	n = max(n, 8)
	if r := []rune(s); len(r) > n {
		head := (n - 1) / 2
		return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
	}
	return s
}
