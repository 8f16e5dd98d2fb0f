package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is one measured run of one system.
type sample struct {
	Workload string             `json:"workload"`
	Config   string             `json:"config"` // e.g. "c=20"
	System   string             `json:"system"` // gomta, postfix, smtp-sink, dovecot
	Round    int                `json:"round"`
	Value    float64            `json:"value"` // the figure (see Unit)
	Unit     string             `json:"unit"`
	P99ms    float64            `json:"p99_ms,omitempty"`
	Extra    map[string]float64 `json:"extra,omitempty"`
	Errors   int64              `json:"errors"`
	Note     string             `json:"note,omitempty"`
}

type bench struct {
	o       opts
	start   time.Time
	samples []sample
	user    int // next r<N> account for timed SMTP runs
	notes   []string
	g       *gomtad
}

// load is one mtaload report (the fields used here).
type load struct {
	ElapsedS float64 `json:"elapsed_s"`
	OK       int64   `json:"ok"`
	Failed   int64   `json:"failed"`
	PerS     float64 `json:"per_s"`
	SessPerS float64 `json:"sessions_per_s"`
	Latency  []struct {
		Step string  `json:"step"`
		P99  float64 `json:"p99"`
	} `json:"latency_ms"`
	Errors []struct {
		Key    string `json:"key"`
		Count  int64  `json:"count"`
		Sample string `json:"sample"`
	} `json:"errors"`
	// idle mode
	Held    int64 `json:"held"`
	Refused int64 `json:"refused"`
	Dropped int64 `json:"dropped"`
}

func (l *load) p99(step string) float64 {
	for _, s := range l.Latency {
		if s.Step == step {
			return s.P99
		}
	}
	return 0
}

func (l *load) errSummary() string {
	var parts []string
	for _, e := range l.Errors {
		parts = append(parts, fmt.Sprintf("%dx %s", e.Count, e.Sample))
	}
	return strings.Join(parts, "; ")
}

// mtaload runs the load generator with -json and a hard timeout.
func (b *bench) mtaload(timeout time.Duration, args ...string) (*load, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	args = append(args, "-json", "-progress", "0", "-timeout", timeout.String())
	cmd := exec.CommandContext(ctx, b.o.mtaload, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	l := new(load)
	if jerr := json.Unmarshal(out.Bytes(), l); jerr != nil {
		return nil, fmt.Errorf("mtaload %s: %v (%v) %s", strings.Join(args, " "), err, jerr, errb.String())
	}
	return l, nil // exit status 1 = some errors, reported in l
}

// maildir is where user's delivered messages land on a system.
func (b *bench) maildir(system, user string) string {
	if system == "gomta" {
		return filepath.Join(b.o.gMail, user+"@"+b.o.domain)
	}
	return filepath.Join(b.o.pMail, user)
}

// count returns the number of messages in a Maildir (new/ and cur/).
func count(dir string) int {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		f, err := os.Open(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for {
			names, err := f.Readdirnames(4096)
			n += len(names)
			if err != nil {
				break
			}
		}
		f.Close()
	}
	return n
}

// waitCount waits (bounded) until the Maildirs hold want messages; it returns
// when that happened, and whether it did.
func waitCount(dirs []string, want int, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for {
		n := 0
		for _, d := range dirs {
			n += count(d)
		}
		if n >= want {
			return time.Now(), true
		}
		if time.Now().After(deadline) {
			return time.Now(), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// smtpRun sends n messages to a fresh account and times them until the last
// is in its Maildir (sink: until the last 250).
func (b *bench) smtpRun(wl, cfg, system, addr string, round, conc, n, size, reuse int) {
	user := "-"
	to := "sink@" + b.o.domain
	if system != "smtp-sink" {
		b.user++
		user = fmt.Sprintf("r%d", b.user)
		to = user + "@" + b.o.domain
	}
	timeout := 10 * time.Minute
	t0 := time.Now()
	l, err := b.mtaload(timeout, "smtp", "-addr", addr, "-c", strconv.Itoa(conc), "-n", strconv.Itoa(n),
		"-size", strconv.Itoa(size), "-reuse", strconv.Itoa(reuse), "-from", "bench@client.test", "-to", to)
	if err != nil {
		b.fail(wl, cfg, system, round, err)
		return
	}
	done, ok := time.Now(), true
	if user != "-" {
		done, ok = waitCount([]string{b.maildir(system, user)}, int(l.OK), 5*time.Minute)
	}
	s := sample{Workload: wl, Config: cfg, System: system, Round: round, Unit: "msg/s",
		P99ms: l.p99("message"), Errors: l.Failed,
		Extra: map[string]float64{"accept_per_s": l.PerS, "accepted": float64(l.OK)}}
	s.Value = float64(l.OK) / done.Sub(t0).Seconds()
	if !ok {
		s.Note = "not every accepted message reached the Maildir within 5 min"
	}
	if l.Failed > 0 {
		s.Note = strings.TrimSpace(s.Note + " " + l.errSummary())
	}
	b.add(s)
}

// sourceRun sends n messages of size octets to addr with Postfix's
// smtp-source (one message per connection, as mtaload's -reuse 1), to
// compare mtaload with it as a client against smtp-sink.
func (b *bench) sourceRun(cfg, addr string, round, conc, n, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.o.smtpSource, "-s", strconv.Itoa(conc), "-m", strconv.Itoa(n),
		"-l", strconv.Itoa(size), "-f", "bench@client.test", "-t", "sink@"+b.o.domain, addr)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(t0)
	if err != nil {
		b.fail("w4", cfg, "smtp-source", round, fmt.Errorf("smtp-source: %v: %s", err, bytes.TrimSpace(out)))
		return
	}
	b.add(sample{Workload: "w4", Config: cfg, System: "smtp-source", Round: round, Unit: "msg/s",
		Value: float64(n) / elapsed.Seconds()})
}

func (b *bench) fail(wl, cfg, system string, round int, err error) {
	logf("%s %s %s round %d: %v", wl, cfg, system, round, err)
	b.add(sample{Workload: wl, Config: cfg, System: system, Round: round, Errors: -1, Note: err.Error()})
}

func (b *bench) add(s sample) {
	b.samples = append(b.samples, s)
	logf("%-3s %-14s %-9s r%d  %10.1f %-7s p99=%.1fms errors=%d %s", s.Workload, s.Config, s.System, s.Round,
		s.Value, s.Unit, s.P99ms, s.Errors, s.Note)
}

// rssKB is the memory (kB) of the given processes: VmRSS of one process;
// for several (Postfix's master, smtpd, cleanup, …) the sum of their PSS,
// which shares the pages they have in common out among them instead of
// counting the shared libraries once per process.
func rssKB(pids []int) int64 {
	if len(pids) == 1 {
		return statusField(pids[0], "VmRSS:")
	}
	var sum int64
	for _, p := range pids {
		sum += fieldKB(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
	}
	return sum
}

func statusField(pid int, key string) int64 {
	return fieldKB(fmt.Sprintf("/proc/%d/status", pid), key)
}

func fieldKB(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// postfixPIDs lists the running Postfix processes (master and its children).
func postfixPIDs() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && strings.HasPrefix(exe, "/usr/lib/postfix/sbin/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// peakRSS samples the RSS sum of the pids given by list every 100 ms until
// stop is closed, and returns the highest value seen.
func peakRSS(list func() []int, stop <-chan struct{}) <-chan int64 {
	res := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssKB(list()); v > peak {
				peak = v
			}
			select {
			case <-stop:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return res
}
