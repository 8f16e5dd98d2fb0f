package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// run measures every selected workload, gomta and the peer alternately.
func (b *bench) run() {
	o := &b.o
	b.warmup()
	conc := []int{1, 20, 100}
	// 1 session is slow on both sides: fewer messages keep the run short.
	n1 := func(c, n int) int {
		if c == 1 {
			return o.scale(n / 4)
		}
		return o.scale(n)
	}
	if o.want("w1") {
		for _, c := range conc {
			for r := 1; r <= o.rounds; r++ {
				cfg := fmt.Sprintf("c=%d", c)
				b.smtpRun("w1", cfg, "gomta", o.gSMTP, r, c, n1(c, 10000), 1024, 1)
				b.smtpRun("w1", cfg, "postfix", o.pSMTP, r, c, n1(c, 10000), 1024, 1)
			}
		}
	}
	if o.want("w2") {
		for _, c := range conc {
			for r := 1; r <= o.rounds; r++ {
				cfg := fmt.Sprintf("c=%d", c)
				b.smtpRun("w2", cfg, "gomta", o.gSMTP, r, c, n1(c, 2000), 100*1024, 1)
				b.smtpRun("w2", cfg, "postfix", o.pSMTP, r, c, n1(c, 2000), 100*1024, 1)
			}
		}
	}
	if o.want("w3") {
		for _, c := range conc {
			for r := 1; r <= o.rounds; r++ {
				cfg := fmt.Sprintf("c=%d", c)
				b.smtpRun("w3", cfg, "gomta", o.gSMTP, r, c, o.scale(10000), 1024, 100)
				b.smtpRun("w3", cfg, "postfix", o.pSMTP, r, c, o.scale(10000), 1024, 100)
			}
		}
	}
	if o.want("w4") {
		for _, c := range conc {
			for r := 1; r <= o.rounds; r++ {
				b.smtpRun("w4", fmt.Sprintf("c=%d", c), "smtp-sink", o.sink, r, c, n1(c, 10000), 1024, 1)
				b.sourceRun(fmt.Sprintf("c=%d", c), o.sink, r, c, n1(c, 10000), 1024)
			}
		}
	}
	if o.want("w5") {
		b.fillPOP3()
		for _, box := range []struct {
			name, accounts string
			n              int
		}{{"20x2.4KiB", o.accSmall, 2000}, {"10x100KiB", o.accLarge, 500}} {
			for _, c := range []int{10, 50} {
				for r := 1; r <= o.rounds; r++ {
					cfg := fmt.Sprintf("%s c=%d", box.name, c)
					b.pop3Run(cfg, "gomta", o.gPOP, box.accounts, r, c, o.scale(box.n))
					b.pop3Run(cfg, "dovecot", o.pPOP, box.accounts, r, c, o.scale(box.n))
				}
			}
		}
	}
	if o.want("w6") {
		n := 10000
		if o.quick {
			n = 2000
		}
		// Each round on a freshly started daemon: the figure is the idle
		// cost of the sessions, not what W1–W5 left in the heap.
		for r := 1; r <= o.rounds; r++ {
			b.idleRun("gomta", o.gSMTP, r, n, b.freshGomta(), func() []int { return []int{b.g.pid()} })
			b.idleRun("postfix", o.pSMTP, r, n, b.freshPeer(), postfixPIDs)
		}
	}
	if o.want("w7") {
		size := 50 << 20
		for r := 1; r <= o.rounds; r++ {
			b.bigRun("gomta", o.gSMTP, r, size, b.freshGomta())
			b.bigRun("postfix", o.pSMTP, r, size, b.freshPeer())
		}
	}
}

// warmup lets Postfix's master spawn its smtpd/cleanup processes and gomta's
// runtime size its pools before anything is timed.
func (b *bench) warmup() {
	for _, addr := range []string{b.o.gSMTP, b.o.pSMTP} {
		if _, err := b.mtaload(2*time.Minute, "smtp", "-addr", addr, "-c", "20", "-n", "500",
			"-from", "bench@client.test", "-to", "warm@"+b.o.domain); err != nil {
			logf("warm-up %s: %v", addr, err)
		}
	}
	time.Sleep(2 * time.Second)
}

// fillPOP3 puts 20 x 2.4 KiB in p1..p50 and 10 x 100 KiB in q1..q50 on both
// systems, through their own SMTP, and waits (bounded) for delivery.
func (b *bench) fillPOP3() {
	for _, sys := range []struct{ name, addr string }{{"gomta", b.o.gSMTP}, {"postfix", b.o.pSMTP}} {
		for _, f := range []struct {
			user      string
			per, size int
		}{{"p", 20, 2200}, {"q", 10, 100 * 1024}} {
			if _, err := b.mtaload(5*time.Minute, "smtp", "-addr", sys.addr, "-c", "10",
				"-n", strconv.Itoa(50*f.per), "-size", strconv.Itoa(f.size), "-from", "bench@client.test",
				"-to", f.user+"%d@"+b.o.domain, "-to-n", "50"); err != nil {
				logf("fill %s: %v", sys.name, err)
			}
			var dirs []string
			for i := 1; i <= 50; i++ {
				dirs = append(dirs, b.maildir(sys.name, fmt.Sprintf("%s%d", f.user, i)))
			}
			if _, ok := waitCount(dirs, 50*f.per, 3*time.Minute); !ok {
				logf("fill %s %s: not all delivered", sys.name, f.user)
			}
		}
	}
}

func (b *bench) pop3Run(cfg, system, addr, accounts string, round, conc, n int) {
	// -bind: worker w always logs into account w (50 accounts >= c), so no
	// two sessions meet on one maildrop (gomta locks it, RFC 1939 §8).
	l, err := b.mtaload(5*time.Minute, "pop3", "-addr", addr, "-accounts", accounts,
		"-c", strconv.Itoa(conc), "-n", strconv.Itoa(n), "-bind")
	if err != nil {
		b.fail("w5", cfg, system, round, err)
		return
	}
	s := sample{Workload: "w5", Config: cfg, System: system, Round: round, Unit: "sess/s",
		Value: float64(l.OK) / l.ElapsedS, P99ms: l.p99("session"), Errors: l.Failed}
	if l.Failed > 0 {
		s.Note = l.errSummary()
	}
	b.add(s)
}

// idleRun holds n SMTP sessions for 10 s and records held/refused and the
// server's memory (sum over its processes) before and at its peak while they
// were open, and the growth per held session. fresh says whether the server
// was started just before.
func (b *bench) idleRun(system, addr string, round, n int, fresh bool, pids func() []int) {
	before := rssKB(pids())
	stop := make(chan struct{})
	peak := peakRSS(pids, stop)
	l, err := b.mtaload(4*time.Minute, "idle", "-addr", addr, "-c", strconv.Itoa(n),
		"-ramp", "1000", "-duration", "10s", "-cmd-timeout", "5s")
	close(stop)
	p := <-peak
	if err != nil {
		b.fail("w6", "10k idle", system, round, err)
		return
	}
	s := sample{Workload: "w6", Config: fmt.Sprintf("%d idle", n), System: system, Round: round,
		Unit: "held", Value: float64(l.Held), Errors: l.Refused + l.Dropped,
		Extra: map[string]float64{"refused": float64(l.Refused), "dropped": float64(l.Dropped),
			"rss_before_mib": float64(before) / 1024, "rss_peak_mib": float64(p) / 1024, "fresh": b2f(fresh)}}
	if l.Held > 0 {
		s.Extra["kib_per_session"] = float64(p-before) / float64(l.Held)
	}
	if !fresh {
		s.Note = "not restarted before the run"
	}
	b.add(s)
	time.Sleep(3 * time.Second) // let the server close everything before the next run
}

// bigRun sends one message of size octets and records whether it was
// accepted and delivered, and the server's peak RSS growth: for gomta the
// kernel's VmHWM after resetting it (clear_refs 5), for Postfix the sampled
// peak of the sum over its processes.
func (b *bench) bigRun(system, addr string, round, size int, fresh bool) {
	b.user++
	user := fmt.Sprintf("r%d", b.user)
	var list func() []int
	gpid := b.g.pid()
	if system == "gomta" {
		list = func() []int { return []int{gpid} }
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", gpid), []byte("5"), 0)
	} else {
		list = postfixPIDs
	}
	before := rssKB(list())
	stop := make(chan struct{})
	peak := peakRSS(list, stop)
	t0 := time.Now()
	l, err := b.mtaload(5*time.Minute, "smtp", "-addr", addr, "-c", "1", "-n", "1",
		"-size", strconv.Itoa(size), "-from", "bench@client.test", "-to", user+"@"+b.o.domain)
	delivered := false
	var done time.Time
	if err == nil && l.OK == 1 {
		done, delivered = waitCount([]string{b.maildir(system, user)}, 1, 2*time.Minute)
	}
	close(stop)
	p := <-peak
	if err != nil {
		b.fail("w7", "50MiB", system, round, err)
		return
	}
	growth := float64(p-before) / 1024
	if system == "gomta" {
		growth = float64(statusField(gpid, "VmHWM:")-before) / 1024
	}
	s := sample{Workload: "w7", Config: "50MiB", System: system, Round: round, Unit: "MiB RSS",
		Value: growth, Errors: l.Failed,
		Extra: map[string]float64{"accepted": float64(l.OK), "delivered": b2f(delivered),
			"rss_before_mib": float64(before) / 1024, "fresh": b2f(fresh)}}
	if delivered {
		s.Extra["seconds_to_maildir"] = done.Sub(t0).Seconds()
	}
	if l.Failed > 0 {
		s.Note = l.errSummary()
	}
	b.add(s)
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
