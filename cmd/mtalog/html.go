package main

import (
	"html/template"
	"io"
	"strconv"
)

// The HTML report is one self-contained page (no external assets: inline
// CSS and SVG) that is also well-formed XML, so that it opens anywhere and
// a test can check it with encoding/xml.

// chart is one inline SVG bar chart.
type chart struct {
	Title    string
	W, H     int
	Bars     []bar
	Baseline float64
	Anchor   string // the labels' text-anchor: under a column, or left of a row
}

// bar is one bar with its label and value text placed.
type bar struct {
	X, Y, W, H   float64
	Label, Value string
	LX, LY       float64 // the label's anchor
	VX, VY       float64 // the value's anchor
}

const (
	chartW   = 720
	chartH   = 220
	labelPad = 40 // room below a vertical chart's bars for the labels
	rowH     = 22 // a horizontal chart's row
	hLabelW  = 220
)

// columnChart draws vertical bars; only every labelEvery-th label shows.
func columnChart(title string, labels []string, values []int64, labelEvery int) chart {
	c := chart{Title: title, W: chartW, H: chartH, Baseline: chartH - labelPad, Anchor: "middle"}
	if len(values) == 0 {
		return c
	}
	top := maxOf(values)
	slot := float64(chartW-20) / float64(len(values))
	plotH := float64(chartH - labelPad - 20)
	for i, v := range values {
		h := 0.0
		if top > 0 {
			h = plotH * float64(v) / float64(top)
		}
		x := 10 + slot*float64(i)
		b := bar{X: x + slot*0.1, Y: c.Baseline - h, W: slot * 0.8, H: h, Value: strconv.FormatInt(v, 10),
			LX: x + slot/2, LY: c.Baseline + 16, VX: x + slot/2, VY: c.Baseline - h - 4}
		if labelEvery <= 1 || i%labelEvery == 0 {
			b.Label = labels[i]
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// rowChart draws horizontal bars, one labelled row each.
func rowChart(title string, labels []string, values []int64) chart {
	c := chart{Title: title, W: chartW, H: rowH*len(values) + 10, Anchor: "end"}
	top := maxOf(values)
	plotW := float64(chartW - hLabelW - 60)
	for i, v := range values {
		w := 0.0
		if top > 0 {
			w = plotW * float64(v) / float64(top)
		}
		y := 5 + float64(rowH*i)
		c.Bars = append(c.Bars, bar{X: hLabelW, Y: y + 3, W: w, H: rowH - 6, Label: ellipsis(labels[i], 30),
			Value: strconv.FormatInt(v, 10), LX: hLabelW - 6, LY: y + rowH/2 + 4, VX: hLabelW + w + 4, VY: y + rowH/2 + 4})
	}
	return c
}

func maxOf(vs []int64) int64 {
	var m int64
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// charts are the report's three charts.
func charts(s Summary) []chart {
	var hl []string
	var hv []int64
	for _, h := range s.Hourly {
		hl = append(hl, h.Hour.Format("01-02 15h"))
		hv = append(hv, h.Received)
	}
	every := 1 + len(hl)/12
	var dl []string
	var dv []int64
	for _, d := range s.Delays {
		dl = append(dl, d.Label)
		dv = append(dv, d.Count)
	}
	var tl []string
	var tv []int64
	for _, d := range s.Domains {
		if len(tl) == 10 {
			break
		}
		tl = append(tl, d.Domain)
		tv = append(tv, d.Received+d.Delivered)
	}
	return []chart{
		columnChart("Messages received per hour (UTC)", hl, hv, every),
		columnChart("Delivery delay from acceptance (recipients)", dl, dv, 1),
		rowChart("Top domains (received from + delivered to)", tl, tv),
	}
}

var funcs = template.FuncMap{
	"f":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"bytes": humanBytes,
	"ms":    msText,
	"dt": func(s Summary) string {
		return s.First.Format("2006-01-02 15:04:05") + " – " + s.Last.Format("2006-01-02 15:04:05")
	},
	"hour": func(h HourRow) string { return h.Hour.Format("2006-01-02 15:00") },
}

var page = template.Must(template.New("page").Funcs(funcs).Parse(`<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<title>gomta mail log summary</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.8em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; margin: 0.5em 0 1.5em; }
rect.bar { fill: #3b7dd8; }
text { font-size: 11px; fill: #333; }
</style>
</head>
<body>
<h1>gomta mail log summary</h1>
{{if not .S.First.IsZero}}<p>{{dt .S}} · {{.S.Lines}} lines ({{.S.Skipped}} skipped)</p>{{end}}
<h2>Grand totals</h2>
<table>
<tr><td class="n">{{.S.Received}}</td><td>received ({{bytes .S.ReceivedBytes}})</td></tr>
<tr><td class="n">{{.S.DeliveredLocal}}</td><td>delivered locally</td></tr>
<tr><td class="n">{{.S.Relayed}}</td><td>relayed</td></tr>
<tr><td class="n">{{.S.Deferred}}</td><td>deferred (relay attempts)</td></tr>
<tr><td class="n">{{.S.Bounced}}</td><td>bounced (recipients)</td></tr>
<tr><td class="n">{{.S.BouncesSent}}</td><td>bounces sent</td></tr>
<tr><td class="n">{{.S.DelayNotices}}</td><td>delay notices sent</td></tr>
<tr><td class="n">{{.S.Refused}}</td><td>refused (SMTP commands)</td></tr>
</table>
<h2>Delivery delay from acceptance</h2>
<table>
<tr><th>recipients</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
<tr><td class="n">{{.S.Delay.Count}}</td><td>{{ms .S.Delay.P50}}</td><td>{{ms .S.Delay.P90}}</td><td>{{ms .S.Delay.P99}}</td><td>{{ms .S.Delay.Max}}</td></tr>
</table>
{{range $c := .Charts}}<h2>{{.Title}}</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img"><title>{{.Title}}</title>
{{range .Bars}}<rect class="bar" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"><title>{{.Label}}: {{.Value}}</title></rect>
{{if .Label}}<text x="{{f .LX}}" y="{{f .LY}}" text-anchor="{{$c.Anchor}}">{{.Label}}</text>{{end}}<text x="{{f .VX}}" y="{{f .VY}}">{{.Value}}</text>
{{end}}</svg>
{{end}}
<h2>Per host</h2>
<table><tr><th>host</th><th>received</th><th>delivered locally</th><th>relayed</th><th>deferred</th><th>bounced</th></tr>
{{range .S.Hosts}}<tr><td>{{.Host}}</td><td class="n">{{.Received}}</td><td class="n">{{.Delivered}}</td><td class="n">{{.Relayed}}</td><td class="n">{{.Deferred}}</td><td class="n">{{.Bounced}}</td></tr>
{{end}}</table>
<h2>Per domain</h2>
<table><tr><th>domain</th><th>received from</th><th>bytes</th><th>delivered to</th><th>deferred</th><th>bounced</th></tr>
{{range .S.Domains}}<tr><td>{{.Domain}}</td><td class="n">{{.Received}}</td><td class="n">{{bytes .ReceivedBytes}}</td><td class="n">{{.Delivered}}</td><td class="n">{{.Deferred}}</td><td class="n">{{.Bounced}}</td></tr>
{{end}}</table>
<h2>Top senders</h2>
<table><tr><th>messages</th><th>sender</th></tr>
{{range .S.Senders}}<tr><td class="n">{{.Count}}</td><td>{{.Key}}</td></tr>
{{end}}</table>
<h2>Top recipients</h2>
<table><tr><th>messages</th><th>recipient</th></tr>
{{range .S.Recipients}}<tr><td class="n">{{.Count}}</td><td>{{.Key}}</td></tr>
{{end}}</table>
<h2>Refused commands</h2>
<table><tr><th>count</th><th>code</th><th>enhanced</th><th>reason</th></tr>
{{range .S.RefusedBy}}<tr><td class="n">{{.Count}}</td><td>{{.Code}}</td><td>{{.Enhanced}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
<h2>Messages per hour (UTC)</h2>
<table><tr><th>hour</th><th>received</th><th>delivered</th></tr>
{{range .S.Hourly}}<tr><td>{{hour .}}</td><td class="n">{{.Received}}</td><td class="n">{{.Delivered}}</td></tr>
{{end}}</table>
<h2>Clients</h2>
<table><tr><th>address</th><th>SMTP sessions</th><th>POP3 sessions</th><th>auth failures</th></tr>
{{range .S.Clients}}<tr><td>{{.Addr}}</td><td class="n">{{.SMTP}}</td><td class="n">{{.POP3}}</td><td class="n">{{.AuthFailures}}</td></tr>
{{end}}</table>
</body>
</html>
`))

// writeHTML writes the report of s.
func writeHTML(w io.Writer, s Summary) error {
	return page.Execute(w, struct {
		S      Summary
		Charts []chart
	}{s, charts(s)})
}
