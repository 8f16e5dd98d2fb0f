package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the result of an smtp or pop3 run, for humans or -json.
type report struct {
	Mode           string       `json:"mode"`
	RunID          string       `json:"run_id,omitempty"`
	Target         string       `json:"target"`
	Concurrency    int          `json:"concurrency"`
	ElapsedS       float64      `json:"elapsed_s"`
	Unit           string       `json:"unit"` // what OK/Failed count: messages or sessions
	OK             int64        `json:"ok"`
	Failed         int64        `json:"failed"`
	Partial        int64        `json:"partial,omitempty"` // smtp: accepted with some recipient refused
	RcptOK         int64        `json:"rcpts_ok,omitempty"`
	RcptFailed     int64        `json:"rcpts_failed,omitempty"`
	Retrieved      int64        `json:"retrieved,omitempty"` // pop3: messages retrieved
	Sessions       int64        `json:"sessions"`
	SessionsFailed int64        `json:"sessions_failed"`
	Bytes          int64        `json:"bytes"`
	PerSecond      float64      `json:"per_s"` // OK units per second
	MBPerSecond    float64      `json:"mb_per_s"`
	SessionsPerS   float64      `json:"sessions_per_s"`
	Latency        []stepReport `json:"latency_ms"`
	Errors         []errReport  `json:"errors"`
	Notes          []string     `json:"notes,omitempty"`

	// smtp -open only: the steps, and the highest step rate sustained.
	OpenLoop         *openSection `json:"open_loop,omitempty"`
	MaxSustainedRate *float64     `json:"max_sustained_rate,omitempty"`
}

// stepReport is one step's latency in milliseconds.
type stepReport struct {
	Step  string  `json:"step"`
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// errReport is one group of errors.
type errReport struct {
	Key    string `json:"key"` // reply code, "-ERR [CODE]", or a transport kind
	Count  int64  `json:"count"`
	Sample string `json:"sample"`
}

// newReport fills what every load mode reports from merged stats.
func newReport(mode, target string, conc int, elapsed time.Duration, t *stats) report {
	secs := elapsed.Seconds()
	rate := func(v int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(v) / secs
	}
	r := report{
		Mode: mode, Target: target, Concurrency: conc, ElapsedS: secs,
		OK: t.okUnits, Failed: t.failUnits, Retrieved: t.retrieved,
		Sessions: t.sessions, SessionsFailed: t.sessionsFail, Bytes: t.bytes,
		PerSecond: rate(t.okUnits), MBPerSecond: rate(t.bytes) / 1e6, SessionsPerS: rate(t.sessions),
		Latency: latencies(t.steps), Errors: errorGroups(t.errs),
	}
	return r
}

func latencies(steps []stepHist) []stepReport {
	out := make([]stepReport, 0, len(steps))
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	for i := range steps {
		h := &steps[i].h
		out = append(out, stepReport{
			Step: steps[i].name, Count: h.n, Mean: h.mean() / 1000,
			P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.max),
		})
	}
	return out
}

// errorGroups sorts error groups by count, then key.
func errorGroups(m map[string]*errGroup) []errReport {
	out := make([]errReport, 0, len(m))
	for k, g := range m {
		out = append(out, errReport{Key: k, Count: g.n, Sample: g.sample})
	}
	slices.SortFunc(out, func(a, b errReport) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key))
	})
	return out
}

// printReport writes r as a table, or as indented JSON.
func printReport(w io.Writer, r *report, asJSON bool) error {
	if asJSON {
		return writeJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "mtaload %s → %s  (c=%d, %.2fs", r.Mode, r.Target, r.Concurrency, r.ElapsedS)
	if r.RunID != "" {
		fmt.Fprintf(tw, ", run %s", r.RunID)
	}
	fmt.Fprintf(tw, ")\n")
	fmt.Fprintf(tw, "%s\tok %d\tfailed %d", r.Unit, r.OK, r.Failed)
	if r.Partial > 0 {
		fmt.Fprintf(tw, "\tpartial %d", r.Partial)
	}
	fmt.Fprintf(tw, "\t%.1f/s\n", r.PerSecond)
	if r.RcptOK+r.RcptFailed > 0 {
		fmt.Fprintf(tw, "recipients\tok %d\tfailed %d\t\n", r.RcptOK, r.RcptFailed)
	}
	if r.Retrieved > 0 {
		fmt.Fprintf(tw, "retrieved\t%d\t\t\n", r.Retrieved)
	}
	fmt.Fprintf(tw, "sessions\tok %d\tfailed %d\t%.1f/s\n", r.Sessions, r.SessionsFailed, r.SessionsPerS)
	fmt.Fprintf(tw, "volume\t%d bytes\t\t%.3f MB/s\n", r.Bytes, r.MBPerSecond)
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printLatency(w, r.Latency); err != nil {
		return err
	}
	if r.OpenLoop != nil {
		if err := printOpen(w, r); err != nil {
			return err
		}
	}
	return printErrors(w, r.Errors, r.Notes)
}

func printLatency(w io.Writer, steps []stepReport) error {
	if len(steps) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nlatency (ms)\tcount\tmean\tp50\tp90\tp99\tmax\t\n")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.Step, s.Count, s.Mean, s.P50, s.P90, s.P99, s.Max)
	}
	return tw.Flush()
}

func printErrors(w io.Writer, errs []errReport, notes []string) error {
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nerrors\n")
		for _, e := range errs {
			fmt.Fprintf(w, "  %-14s %8d  %s\n", e.Key, e.Count, e.Sample)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	_, err := fmt.Fprint(w, "")
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
