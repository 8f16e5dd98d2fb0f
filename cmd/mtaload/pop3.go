package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"gomta/session/pop3client"
)

// account is one POP3 login.
type account struct{ user, pass string }

// accountFlags select the accounts a POP3 mode logs into.
type accountFlags struct {
	file  string
	user  string
	pass  string
	users int
}

func (a *accountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.file, "accounts", "", "`FILE` of \"user password\" lines")
	fs.StringVar(&a.user, "user", "", "user name, or a `template` with one %d (user1..userN)")
	fs.StringVar(&a.pass, "pass", "", "password for -user")
	fs.IntVar(&a.users, "users", 1, "number of accounts of the -user template")
}

// load returns the accounts, from the file or the template.
func (a *accountFlags) load() ([]account, error) {
	switch {
	case a.file != "" && a.user != "":
		return nil, errors.New("give -accounts or -user, not both")
	case a.file != "":
		return readAccounts(a.file)
	case a.user == "":
		return nil, errors.New("-accounts or -user is required")
	}
	if err := checkTemplate("-user", a.user); err != nil {
		return nil, err
	}
	if a.users < 1 {
		return nil, errors.New("-users must be at least 1")
	}
	var out []account
	for _, u := range expand(a.user, a.users) {
		out = append(out, account{user: u, pass: a.pass})
	}
	return out, nil
}

// readAccounts reads "user password" lines; blank lines and # comments are skipped.
func readAccounts(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		user, pass, ok := strings.Cut(text, " ")
		if !ok || user == "" {
			return nil, fmt.Errorf("accounts %s:%d: want \"user password\"", path, line)
		}
		out = append(out, account{user: user, pass: strings.TrimSpace(pass)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("accounts %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("accounts %s: no account", path)
	}
	return out, nil
}

// pop3Config is the pop3 mode's flags.
type pop3Config struct {
	common
	accounts accountFlags
	dele     bool
	rate     float64
	tls      bool
	auth     bool
	bind     bool        // worker w always uses account w mod len(accounts)
	tlsConf  *tls.Config // with -tls
}

const pop3Synopsis = `Runs -n POP3 sessions (or for -duration) over -c concurrent connections:
[STLS with -tls,] USER/PASS (AUTH PLAIN with -auth), STAT, LIST, RETR of every
message, DELE of each with -dele, QUIT.
Session i logs into account i mod (number of accounts); with -bind, worker w
(of -c) always logs into account w mod (number of accounts), so that with at
least -c accounts no two concurrent sessions meet on one maildrop (a server
that locks the maildrop, as RFC 1939 says, would answer -ERR [IN-USE]).`

func runPOP3(args []string, stdout, stderr io.Writer) int {
	var cfg pop3Config
	fs := newFlagSet("pop3", pop3Synopsis, stderr)
	cfg.common.register(fs, "127.0.0.1:110")
	cfg.accounts.register(fs)
	fs.BoolVar(&cfg.dele, "dele", false, "delete every retrieved message (committed at QUIT)")
	fs.Float64Var(&cfg.rate, "rate", 0, "cap on sessions per second (0 = none)")
	fs.BoolVar(&cfg.tls, "tls", false, "STLS before logging in, in every session (certificate not checked)")
	fs.BoolVar(&cfg.auth, "auth", false, "log in with AUTH PLAIN instead of USER/PASS")
	fs.BoolVar(&cfg.bind, "bind", false, "bind each worker to one account (worker w: account w mod N) instead of session i to account i mod N")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := cfg.check(); err != nil {
		return usageErr(stderr, "%v", err)
	}
	if cfg.tls {
		cfg.tlsConf = loadTLSConfig()
	}
	accts, err := cfg.accounts.load()
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	if cfg.bind && len(accts) < cfg.conc {
		fmt.Fprintf(stderr, "mtaload: warning: -bind with %d accounts for -c %d: some workers share an account\n", len(accts), cfg.conc)
	}
	addr, err := loopbackAddr(context.Background(), cfg.addr)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	stopProfile, err := cfg.begin(cfg.tls)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	rep := loadPOP3(&cfg, addr, accts, stderr)
	stopProfile()
	if err := emitReport(stdout, &cfg.common, &rep, func(w io.Writer) error { return printReport(w, &rep, false) }); err != nil {
		fmt.Fprintf(stderr, "mtaload: %v\n", err)
		return exitErrors
	}
	if rep.Failed > 0 || len(rep.Errors) > 0 {
		return exitErrors
	}
	return exitOK
}

// loadPOP3 runs the sessions and returns the merged report.
func loadPOP3(cfg *pop3Config, addr string, accts []account, stderr io.Writer) report {
	hard, stop, cancel := runContexts(&cfg.common)
	defer cancel()
	start := time.Now()
	t := &tickets{n: cfg.n, stop: stop.Done()}
	p := newPacer(cfg.rate)
	workers := make([]*pop3Worker, cfg.conc)
	all := make([]*stats, cfg.conc)
	for i := range workers {
		workers[i] = &pop3Worker{cfg: cfg, accts: accts, id: i}
		all[i] = &workers[i].st
	}
	prog := startProgress(stderr, "pop3", cfg.n, cfg.progress, all)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			defer guard(stderr, "pop3 worker", &w.st.failed)
			w.run(hard, stop, t, p, addr)
		})
	}
	wg.Wait()
	prog.stop()
	var total stats
	for _, w := range workers {
		total.merge(&w.st)
	}
	rep := newReport("pop3", addr, cfg.conc, time.Since(start), &total)
	rep.Unit = "sessions"
	return rep
}

// pop3Worker runs POP3 sessions one after another.
type pop3Worker struct {
	cfg   *pop3Config
	accts []account
	id    int // index among the workers (-bind)
	st    stats
	timer *time.Timer
}

func (w *pop3Worker) run(hard, stop context.Context, t *tickets, p pacer, addr string) {
	opt := pop3client.Options{Timeout: w.cfg.cmdTimeout, Trace: w.st.trace}
	for {
		seq, ok := t.take()
		if !ok || !p.wait(stop.Done(), &w.timer, seq) {
			return
		}
		start := time.Now()
		err := w.session(hard, addr, opt, w.account(seq))
		w.st.step("session").record(time.Since(start))
		if err != nil {
			w.st.addErr(err)
			w.st.failUnits++
			w.st.failed.Add(1)
		} else {
			w.st.okUnits++
		}
		w.st.done.Add(1)
	}
}

// account is the login of session seq: by session, or by worker with -bind.
func (w *pop3Worker) account(seq int64) account {
	if w.cfg.bind {
		return w.accts[w.id%len(w.accts)]
	}
	return w.accts[seq%int64(len(w.accts))]
}

// session runs one login → STAT → LIST → RETR… (→ DELE…) → QUIT.
func (w *pop3Worker) session(hard context.Context, addr string, opt pop3client.Options, a account) error {
	c, err := pop3client.Dial(hard, addr, opt)
	if err != nil {
		w.st.sessionsFail++
		pause(hard, 10*time.Millisecond) // do not spin against a refusing server
		return err
	}
	w.st.sessions++
	abort := context.AfterFunc(hard, func() { _ = c.Close() })
	defer abort()
	fail := func(err error) error {
		_ = c.Close()
		return err
	}
	if w.cfg.tls {
		if err := c.StartTLS(w.cfg.tlsConf); err != nil {
			return fail(err)
		}
	}
	login := c.Login
	if w.cfg.auth {
		login = c.Auth
	}
	if err := login(a.user, a.pass); err != nil {
		return fail(err)
	}
	if _, _, err := c.Stat(); err != nil {
		return fail(err)
	}
	list, err := c.List()
	if err != nil {
		return fail(err)
	}
	for _, m := range list {
		n, err := c.RetrTo(m.Num, io.Discard)
		if err != nil {
			return fail(err)
		}
		w.st.retrieved++
		w.st.bytes += n
		if w.cfg.dele {
			if err := c.Dele(m.Num); err != nil {
				return fail(err)
			}
		}
	}
	return c.Quit()
}
