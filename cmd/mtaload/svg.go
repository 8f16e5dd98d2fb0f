package main

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Inline SVG charts for the HTML report, drawn here so that the report needs
// no script or stylesheet from anywhere. Every text is escaped; the output
// is well-formed XML.

const (
	chartW, chartH = 900, 300
	padL, padR     = 64, 150 // the legend sits in the right margin
	padT, padB     = 28, 40
)

// chartSeries is one line (or one bar colour): Y[i] belongs to the chart's
// X[i] (line) or category i (bars); NaN leaves a gap.
type chartSeries struct {
	Name, Color string
	Y           []float64
}

// axis maps values to pixels, linear or log10.
type axis struct {
	lo, hi   float64
	log      bool
	from, to float64 // pixels
}

func (a axis) px(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		v, lo, hi = math.Log10(math.Max(v, a.lo)), math.Log10(lo), math.Log10(hi)
	}
	if hi <= lo {
		return a.from
	}
	v = math.Min(math.Max(v, lo), hi)
	return a.from + (v-lo)/(hi-lo)*(a.to-a.from)
}

// ticks returns the axis's labelled values: decades on a log axis, about
// five round steps on a linear one.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for v := a.lo; v <= a.hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 5)
	for v := a.lo; v <= a.hi+step/1e6; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// yAxis fits the values: from 0 (linear) or the decade below the smallest
// positive value (log) to a round value above the largest.
func yAxis(series []chartSeries, extra float64, log bool) axis {
	hi, lo := extra, math.Inf(1)
	for _, s := range series {
		for _, v := range s.Y {
			if !math.IsNaN(v) {
				hi = math.Max(hi, v)
				if v > 0 {
					lo = math.Min(lo, v)
				}
			}
		}
	}
	a := axis{from: chartH - padB, to: padT, log: log}
	if !log {
		a.hi = niceStep(hi/5) * 5
		if hi <= 0 {
			a.hi = 1
		}
		return a
	}
	if math.IsInf(lo, 1) {
		lo = 1
	}
	a.lo = math.Pow(10, math.Floor(math.Log10(math.Max(lo, 0.01))))
	a.hi = math.Pow(10, math.Ceil(math.Log10(math.Max(hi, a.lo*10))))
	return a
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) < 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	default:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
}

// frame draws the background, the title, the y grid with labels and the
// axis label.
func frame(b *strings.Builder, title, yLabel string, y axis) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<title>%s</title><rect width="%d" height="%d" fill="#fff"/>`, html.EscapeString(title), chartW, chartH)
	fmt.Fprintf(b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, padL, html.EscapeString(title))
	for _, v := range y.ticks() {
		py := y.px(v)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, chartW-padR, py, py)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`, padL-4, py+4, fmtNum(v))
	}
	fmt.Fprintf(b, `<text transform="translate(14 %d) rotate(-90)" font-size="11" text-anchor="middle">%s</text>`, (chartH-padB+padT)/2, html.EscapeString(yLabel))
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`, padL, chartW-padR, chartH-padB, chartH-padB)
}

// legend lists the series in the right margin.
func legend(b *strings.Builder, series []chartSeries, dashed string) {
	x := chartW - padR + 12
	for i, s := range series {
		y := padT + 10 + 18*i
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`, x, y-4, s.Color)
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11">%s</text>`, x+20, y+1, html.EscapeString(s.Name))
	}
	if dashed != "" {
		y := padT + 10 + 18*len(series)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#c00" stroke-dasharray="4 3"/>`, x, x+14, y-2, y-2)
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11">%s</text>`, x+20, y+1, html.EscapeString(dashed))
	}
}

// lineChart is values over time (x in seconds), with optional step
// boundaries (vertical marks) and a threshold (horizontal, dashed).
type lineChart struct {
	Title, YLabel string
	X             []float64
	Series        []chartSeries
	LogY          bool
	Marks         []float64
	HLine         float64 // 0 = none
	HLabel        string
}

func (c lineChart) svg() template.HTML {
	var b strings.Builder
	y := yAxis(c.Series, c.HLine, c.LogY)
	xmax := 1.0
	if n := len(c.X); n > 0 {
		xmax = math.Max(c.X[n-1], 1)
	}
	x := axis{hi: xmax, from: padL, to: chartW - padR}
	frame(&b, c.Title, c.YLabel, y)
	for _, v := range x.ticks() {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`, x.px(v), chartH-padB+14, fmtNum(v))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">seconds</text>`, (padL+chartW-padR)/2, chartH-6)
	for _, m := range c.Marks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888" stroke-dasharray="2 3"/>`, x.px(m), x.px(m), padT, chartH-padB)
	}
	if c.HLine > 0 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/>`, padL, chartW-padR, y.px(c.HLine), y.px(c.HLine))
	}
	for _, s := range c.Series {
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, s.Color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, v := range s.Y {
			if math.IsNaN(v) || i >= len(c.X) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.px(c.X[i]), y.px(v)))
		}
		flush()
	}
	legend(&b, c.Series, c.HLabel)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from escaped text only
}

// barChart is grouped bars: one group per category, one bar per series.
type barChart struct {
	Title, YLabel string
	Categories    []string
	Series        []chartSeries
	LogY          bool
	HLine         float64
	HLabel        string
}

func (c barChart) svg() template.HTML {
	var b strings.Builder
	y := yAxis(c.Series, c.HLine, c.LogY)
	frame(&b, c.Title, c.YLabel, y)
	n := max(len(c.Categories), 1)
	groupW := float64(chartW-padL-padR) / float64(n)
	barW := groupW * 0.8 / float64(max(len(c.Series), 1))
	base := float64(chartH - padB)
	for i, cat := range c.Categories {
		gx := float64(padL) + groupW*float64(i) + groupW*0.1
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`, gx+groupW*0.4, chartH-padB+14, html.EscapeString(cat))
		for j, s := range c.Series {
			if i >= len(s.Y) || math.IsNaN(s.Y[i]) {
				continue
			}
			top := y.px(s.Y[i])
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
				gx+barW*float64(j), top, math.Max(barW-1, 1), math.Max(base-top, 0), s.Color,
				html.EscapeString(s.Name), fmtNum(s.Y[i]))
		}
	}
	if c.HLine > 0 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/>`, padL, chartW-padR, y.px(c.HLine), y.px(c.HLine))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">step (msg/s)</text>`, (padL+chartW-padR)/2, chartH-6)
	legend(&b, c.Series, c.HLabel)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from escaped text only
}
