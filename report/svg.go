package report

import (
	"fmt"
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
}

type chart struct {
	ID, Title string
	W, H      float64
	Rects     []rect
	Lines     []polyline
	Labels    []label
	Legend    []legendItem
	Empty     string // shown instead when there is nothing to draw
}

type legendItem struct{ Name, Color string }

const (
	plotLeft  = 150.0
	plotWidth = 1000.0
	chartW    = plotLeft + plotWidth + 20
	rowH      = 18.0
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

// stateColor colours pod and target states by what they mean for traffic.
func stateColor(state string) string {
	switch strings.ToLower(state) {
	case "ready", "healthy", "running":
		return "#66bb6a"
	case "initial", "pending", "starting":
		return "#ffee58"
	case "draining", "terminating":
		return "#ffa726"
	case "unhealthy", "failed":
		return "#ef5350"
	case "unused", "exited", "deleted", "gone":
		return "#bdbdbd"
	}
	return "#90caf9"
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

// axis adds time ticks under a plot of height h.
func axis(c *chart, s scale, h float64) {
	for i := 0; i <= 10; i++ {
		ms := s.totalMS * float64(i) / 10
		c.Labels = append(c.Labels, label{X: s.x(ms), Y: h + 14, Text: secLabel(ms), Anchor: "middle"})
	}
}

func outcomesChart(r *Report, s scale) chart {
	const h = 160.0
	c := chart{ID: "outcomes", Title: fmt.Sprintf("Requests per %gms by outcome", r.BinMS), W: chartW, H: h + 40}
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
			c.Rects = append(c.Rects, rect{X: s.x(b.AtMS), Y: y, W: s.w(r.BinMS), H: ht, Fill: colorOf(cl), Opacity: 1,
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
	for _, cl := range append([]timeline.Class{timeline.ClassOK}, timeline.FailureClasses...) {
		if used[cl] {
			c.Legend = append(c.Legend, legendItem{Name: string(cl), Color: colorOf(cl)})
		}
	}
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

func marks(c *chart, r *Report, s scale, h float64) {
	for _, m := range r.Marks {
		c.Rects = append(c.Rects, rect{X: s.x(m.AtMS), Y: 0, W: 1, H: h, Fill: "#555", Opacity: 0.6,
			Title: fmt.Sprintf("%s %s %s %s", secLabel(m.AtMS), m.Kind, m.Object, m.Text)})
	}
}

func latencyChart(r *Report, s scale) chart {
	const h = 140.0
	c := chart{ID: "latency", Title: "Latency percentiles (ms) per bin", W: chartW, H: h + 40}
	top := 0.0
	for _, b := range r.Bins {
		top = max(top, b.P99)
	}
	if top == 0 {
		c.Empty = "no request records"
		return c
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
	for _, se := range series {
		var pts strings.Builder
		for _, b := range r.Bins {
			if b.Requests == 0 {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", s.x(b.AtMS+r.BinMS/2), h-se.get(b)/top*(h-10))
		}
		c.Lines = append(c.Lines, polyline{Points: pts.String(), Stroke: se.color, Title: se.name})
		c.Legend = append(c.Legend, legendItem{Name: se.name, Color: se.color})
	}
	c.Labels = append(c.Labels, label{X: plotLeft - 6, Y: 14, Text: fmt.Sprintf("%.1f ms", top), Anchor: "end"},
		label{X: plotLeft - 6, Y: h, Text: "0", Anchor: "end"})
	axis(&c, s, h)
	return c
}

func replicasChart(r *Report, s scale) chart {
	h := rowH * float64(len(r.Replicas))
	c := chart{ID: "replicas", Title: "Replicas that answered (share of each bin)", W: chartW, H: h + 40}
	if len(r.Replicas) == 0 {
		c.Empty = "no replica header in the records"
		return c
	}
	for i, name := range r.Replicas {
		y := float64(i) * rowH
		c.Labels = append(c.Labels, label{X: plotLeft - 6, Y: y + 13, Text: clip(name), Anchor: "end"})
		for _, b := range r.Bins {
			n := b.Replicas[name]
			if n == 0 {
				continue
			}
			c.Rects = append(c.Rects, rect{X: s.x(b.AtMS), Y: y + 2, W: s.w(r.BinMS), H: rowH - 4, Fill: "#3949ab",
				Opacity: 0.15 + 0.85*float64(n)/float64(b.Requests), Title: fmt.Sprintf("%s %s: %d of %d", secLabel(b.AtMS), name, n, b.Requests)})
		}
	}
	axis(&c, s, h)
	return c
}

func lanesChart(r *Report, s scale) chart {
	h := rowH * float64(len(r.Lanes))
	c := chart{ID: "lanes", Title: "Pod and target states", W: chartW, H: h + 40}
	if len(r.Lanes) == 0 {
		c.Empty = "no pod or target records in the input"
		return c
	}
	states := map[string]bool{}
	for i, l := range r.Lanes {
		y := float64(i) * rowH
		c.Labels = append(c.Labels, label{X: plotLeft - 6, Y: y + 13, Text: clip(string(l.Kind) + " " + l.Object), Anchor: "end"})
		for _, sg := range l.Segments {
			title := fmt.Sprintf("%s %s: %s from %s to %s", l.Kind, l.Object, sg.State, secLabel(sg.FromMS), secLabel(sg.ToMS))
			if sg.Reason != "" {
				title += " (" + sg.Reason + ")"
			}
			c.Rects = append(c.Rects, rect{X: s.x(sg.FromMS), Y: y + 2, W: s.w(sg.ToMS - sg.FromMS), H: rowH - 4,
				Fill: stateColor(sg.State), Opacity: 1, Title: title})
			if !states[sg.State] {
				states[sg.State] = true
				c.Legend = append(c.Legend, legendItem{Name: sg.State, Color: stateColor(sg.State)})
			}
		}
	}
	marks(&c, r, s, h)
	axis(&c, s, h)
	return c
}

// clip shortens a label that would run off the left margin.
func clip(s string) string {
	if r := []rune(s); len(r) > 22 {
		return string(r[:10]) + "…" + string(r[len(r)-10:])
	}
	return s
}
