package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults shared by the modes.
const (
	defaultN          = 100
	defaultTimeout    = 10 * time.Minute // hard bound on a whole run
	defaultCmdTimeout = 30 * time.Second // per command, given to the clients
	defaultProgress   = 5 * time.Second  // plain progress lines when not on a terminal
	resolveTimeout    = 5 * time.Second
)

// common holds the flags every load mode has.
type common struct {
	addr       string
	conc       int
	n          int64
	duration   time.Duration
	timeout    time.Duration
	cmdTimeout time.Duration
	json       bool   // -json: the report as JSON on stdout
	jsonFile   string // -json FILE: the report as JSON into FILE, the text on stdout
	progress   time.Duration
	cpuProfile string
	procs      int
}

func (c *common) register(fs *flag.FlagSet, defAddr string) {
	fs.StringVar(&c.addr, "addr", defAddr, "server `host:port` (loopback only)")
	fs.IntVar(&c.conc, "c", 10, "concurrent sessions")
	fs.Int64Var(&c.n, "n", 0, "total count to run (default 100 when -duration is not given either)")
	fs.DurationVar(&c.duration, "duration", 0, "run for this long (with -n: whichever ends first)")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "hard limit on the whole run; in-flight sessions are cut")
	fs.DurationVar(&c.cmdTimeout, "cmd-timeout", defaultCmdTimeout, "timeout per protocol command")
	fs.Var(&jsonFlag{on: &c.json, file: &c.jsonFile}, "json", "print the report as JSON; -json `FILE` writes it to FILE and prints the text")
	fs.DurationVar(&c.progress, "progress", defaultProgress, "interval of plain progress lines on stderr when it is not a terminal (0 = none)")
	fs.IntVar(&c.procs, "procs", -1, "OS threads running Go code (GOMAXPROCS); 0 = one per CPU; -1 = 1 (as smtp-source: the other CPUs are left to the server under test), or one per CPU with -tls (handshakes)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write mtaload's own CPU profile to `FILE` (go tool pprof), to check that it is not the bottleneck")
}

// setProcs is runtime.GOMAXPROCS; the tests, which run many loads in one
// process at once, record the value instead.
var setProcs = func(n int) { runtime.GOMAXPROCS(n) }

// begin applies -procs (tls: the run does TLS handshakes) and starts the
// CPU profile of -cpuprofile, if any; it returns the function that stops it.
//
// One thread by default: on a small machine shared with the server under
// test, Go's scheduler spreading 20 sessions over every CPU cost more in
// cross-thread wake-ups than it gained (against smtp-sink on 2 CPUs, c=20:
// 8,000–9,000 msg/s with every CPU, 9,500–9,900 with one; smtp-source,
// one thread, 8,700–11,400).
func (c *common) begin(tls bool) (stop func(), err error) {
	switch {
	case c.procs > 0:
		setProcs(c.procs)
	case c.procs == 0 || tls:
		setProcs(runtime.NumCPU())
	default:
		setProcs(1)
	}
	if c.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// check validates the common flags and fills defaults.
func (c *common) check() error {
	var errs []error
	if c.conc < 1 {
		errs = append(errs, errors.New("-c must be at least 1"))
	}
	if c.n < 0 || c.duration < 0 || c.timeout <= 0 || c.cmdTimeout <= 0 {
		errs = append(errs, errors.New("-n, -duration must not be negative; -timeout, -cmd-timeout must be positive"))
	}
	if c.procs < -1 {
		errs = append(errs, errors.New("-procs must not be negative"))
	}
	if c.n == 0 && c.duration == 0 {
		c.n = defaultN
	}
	return errors.Join(errs...)
}

// errNotLoopback is wrapped by loopbackAddr's refusals.
var errNotLoopback = errors.New("refusing non-loopback target: load may only be sent to 127.0.0.0/8 or ::1")

// loopbackAddr checks that addr ("host:port") is a loopback address, or a
// name that resolves only to loopback addresses, and returns it with the
// host replaced by the IP to dial (so that a later resolution cannot point
// elsewhere).
func loopbackAddr(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("bad address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Unmap().IsLoopback() {
			return "", fmt.Errorf("%s: %w", addr, errNotLoopback)
		}
		return addr, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolve %s: no address", host)
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return "", fmt.Errorf("%s resolves to %s: %w", host, ip, errNotLoopback)
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}

// newRunID returns a short random id naming one run in Message-IDs.
func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tickets hands out sequence numbers for units of work (messages,
// sessions) until n are given or stop is closed: one atomic add per unit.
type tickets struct {
	next atomic.Int64
	n    int64 // 0 = unbounded (then stop must end the run)
	stop <-chan struct{}
}

// take returns the next sequence number, or false when the run is over.
func (t *tickets) take() (int64, bool) {
	select {
	case <-t.stop:
		return 0, false
	default:
	}
	seq := t.next.Add(1) - 1
	if t.n > 0 && seq >= t.n {
		return 0, false
	}
	return seq, true
}

// pacer spaces units evenly to honour -rate: unit seq may start at
// start + seq/rate. Shared by all workers without any state but the tickets.
type pacer struct {
	start    time.Time
	interval time.Duration // 0 = no limit
}

func newPacer(rate float64) pacer {
	p := pacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// wait blocks until unit seq is due; false if stop closed first. t is the
// worker's own timer, reused.
func (p pacer) wait(stop <-chan struct{}, t **time.Timer, seq int64) bool {
	if p.interval == 0 {
		return true
	}
	d := time.Until(p.start.Add(time.Duration(seq) * p.interval))
	if d <= 0 {
		return true
	}
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-(*t).C:
		return true
	case <-stop:
		return false
	}
}

// runContexts derives the two contexts of a run: hard ends at -timeout and
// cuts what is in flight; stop ends at -duration (or with hard) and only
// stops new work.
func runContexts(c *common) (hard, stop context.Context, cancel func()) {
	hard, cancelHard := context.WithTimeout(context.Background(), c.timeout)
	stop, cancelStop := hard, context.CancelFunc(func() {})
	if c.duration > 0 {
		stop, cancelStop = context.WithTimeout(hard, c.duration)
	}
	return hard, stop, func() { cancelStop(); cancelHard() }
}

// syncWriter serializes writes to stderr from several goroutines (progress,
// panic reports).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// guard recovers a panic at the top of a goroutine, reports it with its
// stack and counts it as a failure.
func guard(stderr io.Writer, what string, failed *atomic.Int64) {
	if r := recover(); r != nil {
		fmt.Fprintf(stderr, "mtaload: panic in %s: %v\n%s", what, r, debug.Stack())
		if failed != nil {
			failed.Add(1)
		}
	}
}
