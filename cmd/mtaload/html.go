package main

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"
	"time"
)

// The -html report: one self-contained page (inline CSS, inline SVG drawn
// by svg.go, no script) with the run's parameters, latency and throughput
// over time, and the per-step percentiles as bars and as a table.

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mtaload open loop: {{.Rep.Target}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.yes { color: #070; font-weight: bold; } .no { color: #b00; }
.figure { font-size: 18px; margin: 12px 0; }
figure { margin: 12px 0; }
</style>
</head>
<body>
<h1>mtaload open loop → {{.Rep.Target}}</h1>
<p class="figure">Max sustained rate: <b>{{printf "%.0f" .Best}} msg/s</b> (p99 corrected latency &lt; {{.Open.SLOms}} ms and no errors)</p>
<h2>Parameters</h2>
<table>
{{range .Params}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>
{{end}}</table>
<h2>Latency over time</h2>
<p>Corrected latency runs from each message's intended send time to the 250 after its final dot
(coordinated omission corrected, as wrk2 does); service time from the moment a worker began to send it
(connecting first, with greeting and EHLO, when it had no open connection). A message waits when every worker is busy.
Each point is one second, by intended send time; dotted lines mark step boundaries; the dashed line is the SLO.</p>
<figure>{{.Corrected}}</figure>
<figure>{{.Service}}</figure>
<h2>Throughput over time</h2>
<figure>{{.Throughput}}</figure>
<h2>Per step</h2>
<figure>{{.Bars}}</figure>
<table>
<tr><th>rate</th><th>scheduled</th><th>sent</th><th>ok</th><th>errors</th><th>achieved/s</th>
<th>corr. p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>
<th>serv. p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>sustained</th></tr>
{{range .Open.Steps}}<tr><td>{{printf "%.0f" .Rate}}</td><td>{{.Scheduled}}</td><td>{{.Sent}}</td><td>{{.OK}}</td><td>{{.Errors}}</td><td>{{printf "%.1f" .AchievedRate}}</td>
{{with .Corrected}}<td>{{printf "%.2f" .P50}}</td><td>{{printf "%.2f" .P90}}</td><td>{{printf "%.2f" .P99}}</td><td>{{printf "%.2f" .P999}}</td><td>{{printf "%.2f" .Max}}</td>{{end}}
{{with .Service}}<td>{{printf "%.2f" .P50}}</td><td>{{printf "%.2f" .P90}}</td><td>{{printf "%.2f" .P99}}</td><td>{{printf "%.2f" .P999}}</td><td>{{printf "%.2f" .Max}}</td>{{end}}
<td>{{if .Sustained}}<span class="yes">yes</span>{{else}}<span class="no">no</span>{{end}}</td></tr>
{{end}}</table>
<p>Latencies in milliseconds.</p>
{{if .Rep.Errors}}<h2>Errors</h2>
<table><tr><th class="l">kind</th><th>count</th><th class="l">sample</th></tr>
{{range .Rep.Errors}}<tr><td class="l">{{.Key}}</td><td>{{.Count}}</td><td class="l">{{.Sample}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))

// htmlData is what the template shows.
type htmlData struct {
	Rep                                  *report
	Open                                 *openSection
	Best                                 float64
	Params                               [][2]string
	Corrected, Service, Throughput, Bars template.HTML
}

// writeHTML writes the -html report, if asked for.
func (r *openResult) writeHTML(rep *report) error {
	path := r.cfg.open.html
	if path == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := htmlReport.Execute(&buf, r.htmlData(rep)); err != nil {
		return fmt.Errorf("-html: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-html: %w", err)
	}
	return nil
}

func (r *openResult) htmlData(rep *report) *htmlData {
	o := rep.OpenLoop
	cfg := r.cfg
	sched := rep.OpenLoop.Rates
	plan := fmt.Sprintf("steps %v msg/s, %v each", strings.Trim(fmt.Sprint(sched), "[]"), cfg.open.step)
	if o.Ramp != "" {
		plan = fmt.Sprintf("ramp %s msg/s over %v, in %d segments", o.Ramp, cfg.open.step, rampSegments)
	}
	d := &htmlData{Rep: rep, Open: o, Best: *rep.MaxSustainedRate}
	d.Params = [][2]string{
		{"target", rep.Target},
		{"started", r.start.UTC().Format(time.RFC3339)},
		{"schedule", plan},
		{"SLO", fmt.Sprintf("p99 corrected < %v, no errors", cfg.open.slo)},
		{"workers (-c)", fmt.Sprint(cfg.conc)},
		{"messages per connection (-reuse)", fmt.Sprint(cfg.reuse)},
		{"body size (-size)", fmt.Sprintf("%d bytes", cfg.size)},
		{"recipients per message", fmt.Sprint(cfg.rcpts)},
		{"pipelining, STARTTLS, AUTH", fmt.Sprintf("%v, %v, %v", cfg.pipelining, cfg.tls, cfg.auth != "")},
		{"run id", cfg.runID},
		{"elapsed", fmt.Sprintf("%.2fs", rep.ElapsedS)},
		{"sent / ok / failed", fmt.Sprintf("%d / %d / %d", rep.OK+rep.Failed, rep.OK, rep.Failed)},
	}
	d.Corrected, d.Service, d.Throughput, d.Bars = r.charts(o)
	return d
}

// charts draws the four charts of the report.
func (r *openResult) charts(o *openSection) (corrected, service, throughput, bars template.HTML) {
	n := len(o.Timeline)
	xs := make([]float64, n)
	var cp50, cp99, sp50, sp99, sent, ok []float64
	for i, s := range o.Timeline {
		xs[i] = float64(s.T) + 0.5
		nan := func(v float64) float64 {
			if s.Intended == 0 {
				return math.NaN() // nothing intended that second
			}
			return v
		}
		cp50, cp99 = append(cp50, nan(s.CorrectedP50)), append(cp99, nan(s.CorrectedP99))
		sp50, sp99 = append(sp50, nan(s.ServiceP50)), append(sp99, nan(s.ServiceP99))
		sent, ok = append(sent, float64(s.Sent)), append(ok, float64(s.OK))
	}
	var marks []float64
	for _, s := range o.Steps[1:] {
		marks = append(marks, s.StartS)
	}
	slo := fmt.Sprintf("SLO %g ms", o.SLOms)
	latency := func(title string, p50, p99 []float64) template.HTML {
		return lineChart{Title: title, YLabel: "ms (log scale)", X: xs, LogY: true, Marks: marks, HLine: o.SLOms, HLabel: slo,
			Series: []chartSeries{{"p50", "#1f77b4", p50}, {"p99", "#d62728", p99}}}.svg()
	}
	corrected = latency("Corrected latency (intended send → 250), per second", cp50, cp99)
	service = latency("Service time (actual send → 250), per second", sp50, sp99)
	throughput = lineChart{Title: "Throughput: messages sent and acknowledged (250) per second", YLabel: "messages / s", X: xs, Marks: marks,
		Series: []chartSeries{{"sent", "#7f7f7f", sent}, {"ok (250)", "#2ca02c", ok}}}.svg()
	cats := make([]string, len(o.Steps))
	q := make([][]float64, 4)
	for i, s := range o.Steps {
		cats[i] = fmt.Sprintf("%.0f", s.Rate)
		c := s.Corrected
		for j, v := range []float64{c.P50, c.P90, c.P99, c.P999} {
			if s.Sent == 0 {
				v = math.NaN()
			}
			q[j] = append(q[j], v)
		}
	}
	bars = barChart{Title: "Corrected latency percentiles per step", YLabel: "ms (log scale)", Categories: cats, LogY: true,
		HLine: o.SLOms, HLabel: slo, Series: []chartSeries{
			{"p50", "#9ecae1", q[0]}, {"p90", "#4292c6", q[1]}, {"p99", "#d62728", q[2]}, {"p99.9", "#67000d", q[3]},
		}}.svg()
	return corrected, service, throughput, bars
}
