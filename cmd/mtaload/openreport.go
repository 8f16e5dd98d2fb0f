package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// openSection is the open-loop part of the report (JSON "open_loop").
type openSection struct {
	SLOms    float64      `json:"slo_ms"`
	StepS    float64      `json:"step_s"`          // -step: each step's length, or the whole ramp's
	Rates    []float64    `json:"rates,omitempty"` // -rate steps
	Ramp     string       `json:"ramp,omitempty"`  // -ramp FROM:TO
	Reuse    int          `json:"reuse"`
	Size     int          `json:"size"`
	Steps    []openStep   `json:"steps"`
	Timeline []openSecond `json:"timeline"`
}

// openStep is one step of the schedule: what it asked, what came of it.
type openStep struct {
	Rate         float64     `json:"rate"` // intended msg/s (a ramp segment's mean)
	StartS       float64     `json:"start_s"`
	DurationS    float64     `json:"duration_s"`
	Scheduled    int64       `json:"scheduled"`
	Sent         int64       `json:"sent"`
	OK           int64       `json:"ok"`
	Errors       int64       `json:"errors"`        // sent but not 250, plus scheduled but never sent
	AchievedRate float64     `json:"achieved_rate"` // ok / (from the step's start to its last reply, at least its length)
	Corrected    percentiles `json:"corrected"`     // intended send time → 250
	Service      percentiles `json:"service"`       // actual send start → 250
	Sustained    bool        `json:"sustained"`
}

// percentiles are in milliseconds.
type percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// openSecond is one second of the run: latencies of the messages intended
// in it, and the messages sent (started) and acknowledged in it.
type openSecond struct {
	T            int     `json:"t"`
	Intended     int64   `json:"intended"` // sent or not
	Sent         int64   `json:"sent"`
	OK           int64   `json:"ok"`
	CorrectedP50 float64 `json:"corrected_p50"`
	CorrectedP99 float64 `json:"corrected_p99"`
	ServiceP50   float64 `json:"service_p50"`
	ServiceP99   float64 `json:"service_p99"`
}

func percentilesOf(h *hist) percentiles {
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	return percentiles{
		P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(h.max),
	}
}

// openReport is the smtp report with the open-loop section.
func (r *openResult) report() report {
	rep := r.smtpResult.report()
	o := &r.cfg.open
	sec := &openSection{
		SLOms: ms(o.slo), StepS: o.step.Seconds(), Ramp: o.ramp, Reuse: r.cfg.reuse, Size: r.cfg.size,
		Steps: r.steps(), Timeline: r.timeline(),
	}
	if o.ramp == "" {
		sec.Rates = r.cfg.rates
	}
	best := 0.0
	var unsent int64
	for _, s := range sec.Steps {
		if s.Sustained {
			best = max(best, s.Rate)
		}
		unsent += s.Scheduled - s.Sent
	}
	if unsent > 0 {
		rep.Failed += unsent
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d scheduled messages were never sent (cut by -timeout)", unsent))
	}
	rep.OpenLoop, rep.MaxSustainedRate = sec, &best
	return rep
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// steps summarizes the records per step of the schedule.
func (r *openResult) steps() []openStep {
	sched := r.cfg.open.sched
	corr := make([]hist, len(sched))
	serv := make([]hist, len(sched))
	last := make([]time.Duration, len(sched))
	out := make([]openStep, len(sched))
	for _, rec := range r.records {
		i := rec.step
		corr[i].record(rec.corrected())
		serv[i].record(rec.service())
		out[i].Sent++
		if rec.ok {
			out[i].OK++
			last[i] = max(last[i], rec.end)
		}
	}
	for i, g := range sched {
		s := &out[i]
		s.Rate, s.StartS, s.DurationS, s.Scheduled = g.rate(), g.offset.Seconds(), g.dur.Seconds(), g.count
		s.Errors = s.Scheduled - s.OK
		span := max(last[i]-g.offset, g.dur)
		s.AchievedRate = float64(s.OK) / span.Seconds()
		s.Corrected, s.Service = percentilesOf(&corr[i]), percentilesOf(&serv[i])
		s.Sustained = s.Errors == 0 && s.Sent > 0 && s.Corrected.P99 < ms(r.cfg.open.slo)
	}
	return out
}

// timeline summarizes the records per second of the run.
func (r *openResult) timeline() []openSecond {
	n := int(r.elapsed/time.Second) + 1
	for _, rec := range r.records {
		n = max(n, int(rec.end/time.Second)+1)
	}
	corr, serv := make([]hist, n), make([]hist, n)
	out := make([]openSecond, n)
	for _, rec := range r.records {
		i := int(rec.intended / time.Second)
		out[i].Intended++
		corr[i].record(rec.corrected())
		serv[i].record(rec.service())
		out[int(rec.start/time.Second)].Sent++
		if rec.ok {
			out[int(rec.end/time.Second)].OK++
		}
	}
	for i := range out {
		p := &out[i]
		p.T = i
		p.CorrectedP50, p.CorrectedP99 = float64(corr[i].quantile(0.5))/1000, float64(corr[i].quantile(0.99))/1000
		p.ServiceP50, p.ServiceP99 = float64(serv[i].quantile(0.5))/1000, float64(serv[i].quantile(0.99))/1000
	}
	return out
}

// printOpen writes the open-loop section as tables, after the report.
func printOpen(w io.Writer, rep *report) error {
	o := rep.OpenLoop
	plan := fmt.Sprintf("%d steps of %gs", len(o.Steps), o.StepS)
	if o.Ramp != "" {
		plan = fmt.Sprintf("ramp %s msg/s over %gs in %d segments", o.Ramp, o.StepS, len(o.Steps))
	}
	fmt.Fprintf(w, "\nopen loop: %s; sustained = p99 corrected < %gms and no errors\n", plan, o.SLOms)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rate\tsent\tok\terrors\tachieved\t\tcorrected ms: p50\tp90\tp99\tp99.9\tmax\t\tservice ms: p50\tp90\tp99\tp99.9\tmax\tsustained\t\n")
	for _, s := range o.Steps {
		fmt.Fprintf(tw, "%.0f\t%d\t%d\t%d\t%.1f\t\t%s\t\t%s\t%s\t\n", s.Rate, s.Sent, s.OK, s.Errors, s.AchievedRate,
			pctCells(s.Corrected), pctCells(s.Service), yesNo(s.Sustained))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "max sustained rate: %.0f msg/s\n", *rep.MaxSustainedRate)
	return err
}

func pctCells(p percentiles) string {
	return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t%.2f", p.P50, p.P90, p.P99, p.P999, p.Max)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
