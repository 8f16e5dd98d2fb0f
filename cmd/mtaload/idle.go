package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"gomta/session/pop3client"
	"gomta/session/reply"
	"gomta/session/smtpclient"
)

const (
	defaultHold  = 10 * time.Second
	defaultRamp  = 50 // dials in flight while opening
	rssSampling  = 250 * time.Millisecond
	idleSynopsis = `Opens -c SMTP (or POP3) sessions, -ramp at a time, holds them after the
greeting for -duration, then checks each is still alive (NOOP; any reply
counts as alive) and quits. Reports how many were held, refused (dial failed
or negative greeting) and dropped (closed by the server while held), and,
with -pid, the server's VmRSS before, while holding and after, and its VmHWM.`
)

type idleConfig struct {
	addr       string
	proto      string
	conc       int
	ramp       int
	hold       time.Duration
	pid        int
	timeout    time.Duration
	cmdTimeout time.Duration
	json       bool
	progress   time.Duration
}

// idleReport is the result of an idle run.
type idleReport struct {
	Mode        string       `json:"mode"`
	Proto       string       `json:"proto"`
	Target      string       `json:"target"`
	Requested   int          `json:"requested"`
	Held        int64        `json:"held"`
	Refused     int64        `json:"refused"`
	Dropped     int64        `json:"dropped"`
	OpenS       float64      `json:"open_s"` // time to open all sessions
	HoldS       float64      `json:"hold_s"`
	RSS         *rssReport   `json:"rss_kb,omitempty"`
	Latency     []stepReport `json:"latency_ms"`
	Errors      []errReport  `json:"errors"`
	Interrupted bool         `json:"interrupted,omitempty"` // -timeout ended the run early
}

// rssReport is the server's memory (kB) from /proc/PID/status.
type rssReport struct {
	PID        int     `json:"pid"`
	Before     int64   `json:"before"`
	PeakSample int64   `json:"peak_sampled"` // highest VmRSS seen every 250ms
	Held       int64   `json:"held"`         // VmRSS at the end of the hold
	After      int64   `json:"after"`        // VmRSS once every session quit
	HWM        int64   `json:"hwm"`          // VmHWM: the kernel's own peak
	PerSession float64 `json:"per_session"`  // (held - before) / held sessions
}

func runIdle(args []string, stdout, stderr io.Writer) int {
	var cfg idleConfig
	fs := newFlagSet("idle", idleSynopsis, stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:25", "server `host:port` (loopback only)")
	fs.StringVar(&cfg.proto, "proto", "smtp", "smtp or pop3")
	fs.IntVar(&cfg.conc, "c", 100, "sessions to open and hold")
	fs.IntVar(&cfg.ramp, "ramp", defaultRamp, "dials in flight while opening")
	fs.DurationVar(&cfg.hold, "duration", defaultHold, "how long to hold the sessions once all are open")
	fs.IntVar(&cfg.pid, "pid", 0, "server process id, to report its VmRSS/VmHWM (Linux /proc)")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "hard limit on the whole run")
	fs.DurationVar(&cfg.cmdTimeout, "cmd-timeout", defaultCmdTimeout, "timeout per dial+greeting and per command")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	fs.DurationVar(&cfg.progress, "progress", defaultProgress, "interval of plain progress lines on stderr when not a terminal (0 = none)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case cfg.proto != "smtp" && cfg.proto != "pop3":
		return usageErr(stderr, "-proto must be smtp or pop3")
	case cfg.conc < 1 || cfg.ramp < 1:
		return usageErr(stderr, "-c and -ramp must be at least 1")
	case cfg.hold < 0 || cfg.timeout <= 0 || cfg.cmdTimeout <= 0:
		return usageErr(stderr, "-duration must not be negative; -timeout, -cmd-timeout must be positive")
	}
	if cfg.pid != 0 {
		if _, _, err := procMemory(cfg.pid); err != nil {
			return usageErr(stderr, "-pid: %v", err)
		}
	}
	addr, err := loopbackAddr(context.Background(), cfg.addr)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	rep := holdIdle(&cfg, addr, stderr)
	if cfg.json {
		err = writeJSON(stdout, rep)
	} else {
		err = printIdle(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtaload: %v\n", err)
		return exitErrors
	}
	if rep.Refused > 0 || rep.Dropped > 0 || rep.Interrupted {
		return exitErrors
	}
	return exitOK
}

// idleConn is one held session of either protocol.
type idleConn interface {
	alive() bool // a command gets any reply
	quit()
	Close() error
}

type idleSMTP struct{ *smtpclient.Client }

func (c idleSMTP) alive() bool {
	err := c.Noop()
	var r *reply.Reply
	return err == nil || errors.As(err, &r) && r.Code != 421
}
func (c idleSMTP) quit() { _ = c.Quit() }

type idlePOP3 struct{ *pop3client.Client }

// alive: NOOP is a TRANSACTION-state command (RFC 1939 §5), so a server may
// well answer -ERR before login; any reply proves the session is there.
func (c idlePOP3) alive() bool {
	err := c.Noop()
	var e *pop3client.Error
	return err == nil || errors.As(err, &e)
}
func (c idlePOP3) quit() { _ = c.Quit() }

// holdIdle opens the sessions, holds them and closes them.
func holdIdle(cfg *idleConfig, addr string, stderr io.Writer) *idleReport {
	hard, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	rep := &idleReport{Mode: "idle", Proto: cfg.proto, Target: addr, Requested: cfg.conc}
	var mem *rssSampler
	if cfg.pid != 0 {
		mem = startRSS(cfg.pid, stderr)
	}

	release := make(chan struct{}) // closed at the end of the hold
	var held, dropped atomic.Int64
	var holders sync.WaitGroup
	hold := func(c idleConn) {
		holders.Go(func() {
			defer guard(stderr, "idle holder", nil)
			select {
			case <-release:
			case <-hard.Done():
			}
			if hard.Err() == nil && c.alive() {
				held.Add(1)
				c.quit()
				return
			}
			dropped.Add(1)
			_ = c.Close()
		})
	}

	start := time.Now()
	dialers := openIdle(hard, cfg, addr, stderr, hold)
	rep.OpenS = time.Since(start).Seconds()

	// Hold.
	holdStart := time.Now()
	pause(hard, cfg.hold)
	rep.HoldS = time.Since(holdStart).Seconds()
	rep.Interrupted = hard.Err() != nil
	var heldRSS int64
	if mem != nil {
		heldRSS, _, _ = procMemory(cfg.pid)
	}
	close(release)
	holders.Wait()

	var total stats
	for _, st := range dialers {
		total.merge(st)
	}
	rep.Held, rep.Dropped, rep.Refused = held.Load(), dropped.Load(), total.sessionsFail
	rep.Latency, rep.Errors = latencies(total.steps), errorGroups(total.errs)
	if mem != nil {
		rep.RSS = mem.finish(heldRSS, rep.Held)
	}
	return rep
}

// openIdle opens the sessions: -ramp dialers take tickets until -c sessions
// were tried, and each session opened is handed to hold. It returns the
// dialers' statistics.
func openIdle(hard context.Context, cfg *idleConfig, addr string, stderr io.Writer, hold func(idleConn)) []*stats {
	t := &tickets{n: int64(cfg.conc), stop: hard.Done()}
	dialers := make([]*stats, min(cfg.ramp, cfg.conc))
	prog := startProgress(stderr, "idle", int64(cfg.conc), cfg.progress, dialers)
	var wg sync.WaitGroup
	for i := range dialers {
		st := &stats{}
		dialers[i] = st
		wg.Go(func() {
			defer guard(stderr, "idle dialer", &st.failed)
			for {
				if _, ok := t.take(); !ok {
					return
				}
				c, err := dialIdle(hard, cfg, addr, st)
				if err != nil {
					st.addErr(err)
					st.sessionsFail++
					st.failed.Add(1)
				} else {
					st.sessions++
					hold(c)
				}
				st.done.Add(1)
			}
		})
	}
	wg.Wait()
	prog.stop()
	return dialers
}

// dialIdle opens one session of cfg.proto and reads its greeting. Only the
// dial and greeting are traced into st: the session is then handed to a
// holder goroutine, which must not write st.
func dialIdle(ctx context.Context, cfg *idleConfig, addr string, st *stats) (idleConn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.cmdTimeout)
	defer cancel()
	dialing := true // cleared before the hand-off (which happens-before the holder's use)
	trace := func(step string, d time.Duration) {
		if dialing {
			st.trace(step, d)
		}
	}
	defer func() { dialing = false }()
	if cfg.proto == "pop3" {
		c, err := pop3client.Dial(ctx, addr, pop3client.Options{Timeout: cfg.cmdTimeout, Trace: trace})
		if err != nil {
			return nil, err
		}
		return idlePOP3{c}, nil
	}
	c, err := smtpclient.Dial(ctx, addr, smtpclient.Options{Timeout: cfg.cmdTimeout, Trace: trace})
	if err != nil {
		return nil, err
	}
	return idleSMTP{c}, nil
}

// rssSampler follows a process's VmRSS while the sessions are held.
type rssSampler struct {
	pid    int
	before int64
	peak   atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func startRSS(pid int, stderr io.Writer) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{})}
	s.before, _, _ = procMemory(pid)
	s.peak.Store(s.before)
	s.wg.Go(func() {
		defer guard(stderr, "rss sampler", nil)
		t := time.NewTicker(rssSampling)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				if rss, _, err := procMemory(pid); err == nil && rss > s.peak.Load() {
					s.peak.Store(rss)
				}
			}
		}
	})
	return s
}

// finish stops sampling and reports; held is how many sessions were held.
func (s *rssSampler) finish(heldRSS, held int64) *rssReport {
	close(s.done)
	s.wg.Wait()
	r := &rssReport{PID: s.pid, Before: s.before, PeakSample: max(s.peak.Load(), heldRSS), Held: heldRSS}
	r.After, r.HWM, _ = procMemory(s.pid)
	if held > 0 {
		r.PerSession = float64(heldRSS-s.before) / float64(held)
	}
	return r
}

// procMemory reads VmRSS and VmHWM (kB) from /proc/PID/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("process memory: %w", err)
	}
	rss, hwm, ok := parseStatus(data)
	if !ok {
		return 0, 0, fmt.Errorf("process memory: no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// parseStatus extracts VmRSS and VmHWM ("VmRSS:\t  1234 kB") from a
// /proc/PID/status text.
func parseStatus(data []byte) (rss, hwm int64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, found := bytes.Cut(sc.Bytes(), []byte(":"))
		if !found {
			continue
		}
		f := bytes.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			continue
		}
		switch string(key) {
		case "VmRSS":
			rss, ok = n, true
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, ok
}

func printIdle(w io.Writer, r *idleReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "mtaload idle %s → %s\n", r.Proto, r.Target)
	fmt.Fprintf(tw, "sessions\trequested %d\theld %d\trefused %d\tdropped %d\n", r.Requested, r.Held, r.Refused, r.Dropped)
	fmt.Fprintf(tw, "time\topen %.2fs\thold %.2fs\t\t\n", r.OpenS, r.HoldS)
	if m := r.RSS; m != nil {
		fmt.Fprintf(tw, "server rss (pid %d)\tbefore %d kB\theld %d kB\tafter %d kB\tpeak %d kB (VmHWM %d kB)\n",
			m.PID, m.Before, m.Held, m.After, m.PeakSample, m.HWM)
		fmt.Fprintf(tw, "per held session\t%.1f kB\t\t\t\n", m.PerSession)
	}
	if r.Interrupted {
		fmt.Fprintf(tw, "interrupted by -timeout\t\t\t\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printLatency(w, r.Latency); err != nil {
		return err
	}
	return printErrors(w, r.Errors, nil)
}
