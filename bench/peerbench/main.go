// Command peerbench runs the side-by-side workloads of bench/peers.sh: every
// figure is measured against gomta and its peer (Postfix, smtp-sink or
// Dovecot) alternately, A B A B …, for -rounds rounds, with cmd/mtaload as the
// one load generator for both sides. It writes bench/results/latest.{md,json,svg}
// and a dated copy. It expects the servers to be running (peers.sh starts them)
// and only ever talks to 127.0.0.1. Every wait in it is bounded.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// opts are the command line: where the servers are and what to run.
type opts struct {
	mtaload, out, only, cmd, domain  string
	smtpSource                       string
	quick                            bool
	rounds                           int
	gSMTP, gPOP, gMail, gSpool       string
	gPID                             int
	pSMTP, pPOP, sink, pMail, pSpool string
	accSmall, accLarge               string
	mtad, mtadConfig, mtadLog        string
	mtadPIDFile, peerRestart         string
	rev                              string
}

func main() {
	var o opts
	flag.StringVar(&o.mtaload, "mtaload", "mtaload", "mtaload binary")
	flag.StringVar(&o.out, "out", "bench/results", "results `DIR`")
	flag.StringVar(&o.smtpSource, "smtp-source", "smtp-source", "Postfix's smtp-source `binary` (W4: is mtaload as fast a client?)")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run (w1..w7; default all)")
	flag.StringVar(&o.cmd, "cmd", "bash bench/peers.sh all", "command line recorded in the results")
	flag.StringVar(&o.domain, "domain", "bench.test", "mail domain of both servers")
	flag.BoolVar(&o.quick, "quick", false, "one round, a tenth of the messages")
	flag.IntVar(&o.rounds, "rounds", 3, "A/B rounds per figure")
	flag.StringVar(&o.gSMTP, "gomta-smtp", "127.0.0.1:2625", "gomta SMTP")
	flag.StringVar(&o.gPOP, "gomta-pop", "127.0.0.1:2610", "gomta POP3")
	flag.IntVar(&o.gPID, "gomta-pid", 0, "mtad's pid (RSS)")
	flag.StringVar(&o.gMail, "gomta-mail", "", "gomta's mail/ folder (Maildirs named by address)")
	flag.StringVar(&o.gSpool, "gomta-spool", "", "gomta's spool folder")
	flag.StringVar(&o.pSMTP, "peer-smtp", "127.0.0.1:2525", "Postfix SMTP")
	flag.StringVar(&o.pPOP, "peer-pop", "127.0.0.1:1110", "Dovecot POP3")
	flag.StringVar(&o.sink, "sink", "127.0.0.1:2526", "smtp-sink")
	flag.StringVar(&o.pMail, "peer-mail", "", "Postfix's Maildir root for the domain (Maildirs named by local part)")
	flag.StringVar(&o.pSpool, "peer-spool", "/var/spool/postfix", "Postfix's queue")
	flag.StringVar(&o.accSmall, "accounts-small", "", "POP3 accounts (20 x 2.4 KiB)")
	flag.StringVar(&o.accLarge, "accounts-large", "", "POP3 accounts (10 x 100 KiB)")
	flag.StringVar(&o.mtad, "mtad", "", "mtad `binary`: the runner starts it, and afresh before every W6 and W7 round (default: measure -gomta-pid, never restarted)")
	flag.StringVar(&o.mtadConfig, "mtad-config", "", "mtad's config file (with -mtad)")
	flag.StringVar(&o.mtadLog, "mtad-log", os.DevNull, "file mtad's output is appended to (with -mtad)")
	flag.StringVar(&o.mtadPIDFile, "mtad-pidfile", "", "file the running mtad's pid is written to (with -mtad)")
	flag.StringVar(&o.peerRestart, "peer-restart", "", "shell command restarting Postfix before every W6 and W7 round (default: none)")
	flag.StringVar(&o.rev, "rev", "", "gomta's commit (recorded in the results)")
	flag.Parse()
	if o.quick {
		o.rounds = 1
	}
	if o.rounds < 1 || o.rounds > 20 {
		fmt.Fprintln(os.Stderr, "peerbench: -rounds must be 1..20")
		os.Exit(2)
	}
	b := &bench{o: o, start: time.Now(), g: &gomtad{bin: o.mtad, config: o.mtadConfig, logPath: o.mtadLog,
		pidFile: o.mtadPIDFile, addrs: []string{o.gSMTP, o.gPOP}, extPID: o.gPID}}
	if b.g.owned() {
		if err := b.g.start(); err != nil {
			fmt.Fprintln(os.Stderr, "peerbench:", err)
			os.Exit(1)
		}
	}
	// SIGINT/SIGTERM (peers.sh's timeout or trap): stop mtad, then exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("%v: stopping mtad", s)
		_ = b.g.stop()
		os.Exit(1)
	}()
	b.run()
	if err := b.g.stop(); err != nil {
		logf("%v", err)
	}
	if err := b.write(); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

// want reports whether workload w is selected by -only.
func (o *opts) want(w string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if strings.TrimSpace(s) == w {
			return true
		}
	}
	return false
}

// scale divides a message count in quick mode (at least 50).
func (o *opts) scale(n int) int {
	if o.quick {
		return max(n/10, 50)
	}
	return n
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "# %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func stamp(t time.Time) string { return t.UTC().Format("20060102-150405") }

func outPath(dir, name string) string { return filepath.Join(dir, name) }
