package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// stat is the summary of one (workload, config, system) over its rounds.
type stat struct {
	Workload string             `json:"workload"`
	Config   string             `json:"config"`
	System   string             `json:"system"`
	Unit     string             `json:"unit"`
	Rounds   int                `json:"rounds"`
	Median   float64            `json:"median"`
	Min      float64            `json:"min"`
	Max      float64            `json:"max"`
	P99ms    float64            `json:"p99_ms_median,omitempty"`
	Extra    map[string]float64 `json:"extra_median,omitempty"`
	Errors   int64              `json:"errors"`
	Notes    []string           `json:"notes,omitempty"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize groups the samples in the order they were first measured.
func (b *bench) summarize() []*stat {
	var out []*stat
	idx := map[string]*stat{}
	vals := map[*stat][]float64{}
	p99s := map[*stat][]float64{}
	extras := map[*stat]map[string][]float64{}
	for _, s := range b.samples {
		k := s.Workload + "|" + s.Config + "|" + s.System
		st := idx[k]
		if st == nil {
			st = &stat{Workload: s.Workload, Config: s.Config, System: s.System, Unit: s.Unit}
			idx[k] = st
			extras[st] = map[string][]float64{}
			out = append(out, st)
		}
		if s.Errors < 0 { // the run itself failed
			st.Notes = append(st.Notes, s.Note)
			continue
		}
		if st.Unit == "" {
			st.Unit = s.Unit
		}
		st.Rounds++
		st.Errors += s.Errors
		vals[st] = append(vals[st], s.Value)
		if s.P99ms > 0 {
			p99s[st] = append(p99s[st], s.P99ms)
		}
		for k, v := range s.Extra {
			extras[st][k] = append(extras[st][k], v)
		}
		if s.Note != "" && len(st.Notes) < 3 {
			st.Notes = append(st.Notes, s.Note)
		}
	}
	for _, st := range out {
		v := vals[st]
		if len(v) > 0 {
			st.Median, st.Min, st.Max = median(v), slices.Min(v), slices.Max(v)
		}
		st.P99ms = median(p99s[st])
		if len(extras[st]) > 0 {
			st.Extra = map[string]float64{}
			for k, v := range extras[st] {
				st.Extra[k] = median(v)
			}
		}
	}
	return out
}

// machine describes where the run happened.
type machine struct {
	CPU          string  `json:"cpu"`
	Cores        int     `json:"cores"`
	MemGiB       float64 `json:"mem_gib"`
	Disk         string  `json:"disk"`
	Kernel       string  `json:"kernel"`
	OS           string  `json:"os"`
	Go           string  `json:"go"`
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
}

func firstLine(path, prefix string) string {
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(l, prefix))
		}
	}
	return ""
}

func readTrim(path string) string {
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func describeMachine(loadStart string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadStart,
		LoadAvgEnd: readTrim("/proc/loadavg")}
	m.CPU = strings.TrimLeft(firstLine("/proc/cpuinfo", "model name"), ": \t")
	var kb float64
	fmt.Sscanf(firstLine("/proc/meminfo", "MemTotal:"), "%f", &kb)
	m.MemGiB = kb / (1 << 20)
	m.Kernel = readTrim("/proc/sys/kernel/osrelease")
	m.OS = strings.Trim(firstLine("/etc/os-release", "PRETTY_NAME="), `"`)
	var sf syscall.Statfs_t
	if syscall.Statfs("/tmp", &sf) == nil {
		for _, l := range strings.Split(readTrim("/proc/mounts"), "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && f[1] == "/" {
				m.Disk = fmt.Sprintf("%s %s (%s), %.0f GiB, %.0f GiB free", f[0], f[2], f[3],
					float64(sf.Blocks)*float64(sf.Bsize)/(1<<30), float64(sf.Bavail)*float64(sf.Bsize)/(1<<30))
			}
		}
	}
	return m
}

var loadStart = readTrim("/proc/loadavg")

// write saves the samples, the summary, the Markdown table and the chart.
func (b *bench) write() error {
	sum := b.summarize()
	m := describeMachine(loadStart)
	doc := map[string]any{
		"started": b.start.UTC().Format(time.RFC3339), "duration_s": time.Since(b.start).Seconds(),
		"command": b.o.cmd, "gomta_rev": b.o.rev, "rounds": b.o.rounds, "quick": b.o.quick, "machine": m,
		"summary": sum, "samples": b.samples,
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	md := b.markdown(sum, m)
	svg := chart(sum)
	if err := os.MkdirAll(b.o.out, 0o755); err != nil {
		return err
	}
	tag := stamp(b.start)
	if b.o.quick {
		tag += "-quick"
	}
	for name, data := range map[string][]byte{
		"latest.json": js, "latest.md": []byte(md), "latest.svg": []byte(svg),
		tag + ".json": js, tag + ".md": []byte(md),
	} {
		if err := os.WriteFile(outPath(b.o.out, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	return nil
}

func find(sum []*stat, wl, cfg, sys string) *stat {
	for _, s := range sum {
		if s.Workload == wl && s.Config == cfg && s.System == sys {
			return s
		}
	}
	return nil
}

func cell(s *stat) string {
	if s == nil {
		return "–"
	}
	if s.Rounds == 0 {
		return "failed"
	}
	c := fmt.Sprintf("**%s** (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
	if s.Errors > 0 {
		c += fmt.Sprintf(", %d errors", s.Errors)
	}
	return c
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func p99(s *stat) string {
	if s == nil || s.P99ms == 0 {
		return "–"
	}
	return num(s.P99ms)
}

func ratio(a, b *stat) string {
	if a == nil || b == nil || a.Rounds == 0 || b.Rounds == 0 || b.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.Median/b.Median)
}

var titles = map[string]string{
	"w1": "W1 SMTP 1 KiB, new connection per message → Maildir",
	"w2": "W2 SMTP 100 KiB, new connection per message → Maildir",
	"w3": "W3 SMTP 1 KiB, 100 messages per connection → Maildir",
	"w4": "W4 protocol ceiling (1 KiB, new connection): fraction of smtp-sink",
	"w5": "W5 POP3 login, LIST, RETR all, QUIT",
	"w6": "W6 concurrent idle SMTP sessions",
	"w7": "W7 one 50 MiB message",
}

func (b *bench) markdown(sum []*stat, m machine) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Run %s UTC, %d round(s)%s, %.0f s; `%s`; gomta %s.  \n", b.start.UTC().Format("2006-01-02 15:04"),
		b.o.rounds, map[bool]string{true: " (QUICK)", false: ""}[b.o.quick], time.Since(b.start).Seconds(), b.o.cmd, b.o.rev)
	fmt.Fprintf(&w, "Machine: %s, %d cores, %.1f GiB, %s; kernel %s; %s; %s. Load average at start %s, at end %s (shared machine).\n\n",
		m.CPU, m.Cores, m.MemGiB, m.Disk, m.Kernel, m.OS, m.Go, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(&w, "Cells: **median** (min–max over the rounds); p99 in ms.\n")
	seen := map[string]bool{}
	for _, s := range sum {
		if seen[s.Workload] {
			continue
		}
		seen[s.Workload] = true
		fmt.Fprintf(&w, "\n### %s\n\n", titles[s.Workload])
		switch s.Workload {
		case "w1", "w2", "w3":
			fmt.Fprintf(&w, "| sessions | gomta msg/s | p99 | Postfix msg/s | p99 | gomta / Postfix |\n|---|---|---|---|---|---|\n")
			for _, c := range configs(sum, s.Workload) {
				g, p := find(sum, s.Workload, c, "gomta"), find(sum, s.Workload, c, "postfix")
				fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s |\n", c, cell(g), p99(g), cell(p), p99(p), ratio(g, p))
			}
		case "w4":
			fmt.Fprintf(&w, "| sessions | smtp-sink msg/s (mtaload) | smtp-sink msg/s (smtp-source) | mtaload / smtp-source | gomta (W1) / sink | Postfix (W1) / sink |\n|---|---|---|---|---|---|\n")
			for _, c := range configs(sum, "w4") {
				k, src := find(sum, "w4", c, "smtp-sink"), find(sum, "w4", c, "smtp-source")
				fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s |\n", c, cell(k), cell(src), ratio(k, src),
					ratio(find(sum, "w1", c, "gomta"), k), ratio(find(sum, "w1", c, "postfix"), k))
			}
		case "w5":
			fmt.Fprintf(&w, "| mailboxes, sessions | gomta sessions/s | p99 | Dovecot sessions/s | p99 | gomta / Dovecot |\n|---|---|---|---|---|---|\n")
			for _, c := range configs(sum, "w5") {
				g, p := find(sum, "w5", c, "gomta"), find(sum, "w5", c, "dovecot")
				fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s |\n", c, cell(g), p99(g), cell(p), p99(p), ratio(g, p))
			}
		case "w6":
			fmt.Fprintf(&w, "Each round on a freshly started daemon (`fresh` = rounds restarted just before).\n\n")
			fmt.Fprintf(&w, "| system | held (greeted) | refused or not greeted within 5 s | dropped | memory before (MiB) | peak memory while held (MiB) | growth per held session (KiB) | fresh |\n|---|---|---|---|---|---|---|---|\n")
			for _, c := range configs(sum, "w6") {
				for _, sys := range []string{"gomta", "postfix"} {
					if g := find(sum, "w6", c, sys); g != nil && g.Rounds > 0 {
						fmt.Fprintf(&w, "| %s (%s) | %s | %.0f | %.0f | %.1f | %.1f | %.1f | %s |\n", sys, c, cell(g),
							g.Extra["refused"], g.Extra["dropped"], g.Extra["rss_before_mib"], g.Extra["rss_peak_mib"],
							g.Extra["kib_per_session"], yes(g.Extra["fresh"]))
					}
				}
			}
		case "w7":
			fmt.Fprintf(&w, "| system | accepted | in Maildir | seconds to Maildir | memory before (MiB) | peak memory growth (MiB) | fresh |\n|---|---|---|---|---|---|---|\n")
			for _, sys := range []string{"gomta", "postfix"} {
				if g := find(sum, "w7", "50MiB", sys); g != nil && g.Rounds > 0 {
					fmt.Fprintf(&w, "| %s | %s | %s | %s | %.1f | %s | %s |\n", sys, yes(g.Extra["accepted"]), yes(g.Extra["delivered"]),
						num(g.Extra["seconds_to_maildir"]), g.Extra["rss_before_mib"], cell(g), yes(g.Extra["fresh"]))
				}
			}
		}
		for _, st := range sum {
			if st.Workload == s.Workload {
				for _, n := range st.Notes {
					fmt.Fprintf(&w, "\nNote (%s %s): %s\n", st.System, st.Config, n)
				}
			}
		}
	}
	return w.String()
}

func yes(v float64) string {
	if v >= 1 {
		return "yes"
	}
	return "no"
}

// configs lists a workload's configs in measuring order.
func configs(sum []*stat, wl string) []string {
	var out []string
	for _, s := range sum {
		if s.Workload == wl && !slices.Contains(out, s.Config) {
			out = append(out, s.Config)
		}
	}
	return out
}
