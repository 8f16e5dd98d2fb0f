package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"gomta/session/reply"
	"gomta/session/smtpclient"
)

// smtpConfig is the smtp mode's flags.
type smtpConfig struct {
	common
	size       int
	rcpts      int
	from       string
	to         string
	toN        int
	reuse      int
	pipelining bool
	rate       float64 // closed loop: the one -rate value
	rates      rateList
	open       openConfig
	auth       string
	tls        bool
	user, pass string      // from -auth
	tlsConfig  *tls.Config // with -tls
	acked      string
	helo       string
	runID      string
}

const smtpSynopsis = `Sends -n messages (or for -duration) over -c concurrent SMTP sessions, each
connection carrying -reuse messages. Recipients come from -to, a template
such as user%d@example.test spread over -to-n mailboxes (user1..userN).
Every message has a unique Message-ID <RUN.SEQ@mtaload>; -acked FILE saves
the ids that got a 250, per recipient, for "mtaload verify".

With -open, messages are sent at a fixed arrival rate instead (-rate steps
of -step each, or a -ramp), by a pool of -c workers, and each step reports
its latency from the intended send time (corrected) and from the actual one
(service); -html FILE draws the run. -n and -duration do not apply.`

func (c *smtpConfig) register(fs *flag.FlagSet) {
	c.common.register(fs, "127.0.0.1:25")
	fs.IntVar(&c.size, "size", 1024, "body `bytes` per message (after the header)")
	fs.IntVar(&c.rcpts, "rcpts", 1, "recipients per message")
	fs.StringVar(&c.from, "from", "mtaload@localhost", "envelope and header sender")
	fs.StringVar(&c.to, "to", "", "recipient, or a `template` with one %d (required)")
	fs.IntVar(&c.toN, "to-n", 1, "mailboxes the %d template is spread over (1..N)")
	fs.IntVar(&c.reuse, "reuse", 1, "messages per connection (1 = a new connection per message)")
	fs.BoolVar(&c.pipelining, "pipelining", false, "pipeline MAIL/RCPT/DATA when the server offers PIPELINING (RFC 2920)")
	fs.Var(&c.rates, "rate", "cap on messages per second over all sessions (0 = none); with -open, the `steps` of the arrival rate (250,500,1000)")
	c.open.register(fs)
	fs.StringVar(&c.auth, "auth", "", "authenticate every session with AUTH PLAIN (or LOGIN) as `user:pass`")
	fs.BoolVar(&c.tls, "tls", false, "STARTTLS before MAIL in every session (certificate not checked); fails if not offered")
	fs.StringVar(&c.acked, "acked", "", "write the acked Message-IDs per recipient to `FILE` (.json = JSON, else lines)")
	fs.StringVar(&c.helo, "helo", "mtaload.localhost", "EHLO name")
	fs.StringVar(&c.runID, "run-id", "", "run id used in Message-IDs (default random)")
}

func (c *smtpConfig) check() error {
	errs := []error{c.common.check()}
	if c.size < 0 {
		errs = append(errs, errors.New("-size must not be negative"))
	}
	if c.rcpts < 1 || c.reuse < 1 || c.toN < 1 {
		errs = append(errs, errors.New("-rcpts, -reuse and -to-n must be at least 1"))
	}
	if c.open.on {
		errs = append(errs, c.open.check(&c.common, c.rates))
	} else {
		errs = append(errs, c.open.checkClosed(c.rates))
		if len(c.rates) == 1 {
			c.rate = c.rates[0]
		}
	}
	if c.to == "" {
		errs = append(errs, errors.New("-to is required"))
	} else if err := checkTemplate("-to", c.to); err != nil {
		errs = append(errs, err)
	}
	if !strings.Contains(c.to, "%d") && c.toN > 1 {
		errs = append(errs, errors.New("-to-n needs a -to template with %d"))
	}
	if c.rcpts > c.toN {
		errs = append(errs, fmt.Errorf("-rcpts %d needs at least as many distinct mailboxes (-to-n %d)", c.rcpts, c.toN))
	}
	if c.auth != "" {
		var err error
		if c.user, c.pass, err = parseAuth(c.auth); err != nil {
			errs = append(errs, err)
		}
	}
	if c.tls {
		c.tlsConfig = loadTLSConfig()
	}
	if strings.ContainsAny(c.runID, "<>@ \t\r\n") {
		errs = append(errs, errors.New("-run-id must not contain <, >, @ or spaces"))
	}
	return errors.Join(errs...)
}

// checkTemplate accepts a plain name or one with a single %d.
func checkTemplate(flag, tpl string) error {
	if !strings.Contains(tpl, "%") {
		return nil
	}
	if strings.Count(tpl, "%") != 1 || strings.Count(tpl, "%d") != 1 {
		return fmt.Errorf("%s: template %q must contain one %%d and no other %%", flag, tpl)
	}
	return nil
}

// expand returns the n names of a template (1..n), or the name itself.
func expand(tpl string, n int) []string {
	if !strings.Contains(tpl, "%d") {
		return []string{tpl}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(tpl, i+1)
	}
	return out
}

func runSMTP(args []string, stdout, stderr io.Writer) int {
	var cfg smtpConfig
	fs := newFlagSet("smtp", smtpSynopsis, stderr)
	cfg.register(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := cfg.check(); err != nil {
		return usageErr(stderr, "%v", err)
	}
	addr, err := loopbackAddr(context.Background(), cfg.addr)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	if cfg.runID == "" {
		cfg.runID = newRunID()
	}
	stopProfile, err := cfg.begin(cfg.tls)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	var res *smtpResult
	var rep report
	if cfg.open.on {
		ores := loadOpen(&cfg, addr, stderr)
		res, rep = &ores.smtpResult, ores.report()
		if err := ores.writeHTML(&rep); err != nil {
			fmt.Fprintf(stderr, "mtaload: %v\n", err)
			return exitErrors
		}
	} else {
		res = loadSMTP(&cfg, addr, stderr)
		rep = res.report()
	}
	stopProfile()
	return finishSMTP(&cfg, res, &rep, stdout, stderr)
}

// finishSMTP writes the acked file and the report and returns the exit status.
func finishSMTP(cfg *smtpConfig, res *smtpResult, rep *report, stdout, stderr io.Writer) int {
	if cfg.acked != "" {
		if err := writeAcked(cfg.acked, res.acked()); err != nil {
			fmt.Fprintf(stderr, "mtaload: %v\n", err)
			return exitErrors
		}
	}
	if err := emitReport(stdout, &cfg.common, rep, func(w io.Writer) error { return printReport(w, rep, false) }); err != nil {
		fmt.Fprintf(stderr, "mtaload: %v\n", err)
		return exitErrors
	}
	if rep.Failed > 0 || len(rep.Errors) > 0 {
		return exitErrors
	}
	return exitOK
}

// smtpResult is a finished smtp run.
type smtpResult struct {
	cfg     *smtpConfig
	addr    string
	elapsed time.Duration
	to      []string
	workers []*smtpWorker
	total   stats
}

// loadSMTP runs the load and merges the workers' stats.
func loadSMTP(cfg *smtpConfig, addr string, stderr io.Writer) *smtpResult {
	hard, stop, cancel := runContexts(&cfg.common)
	defer cancel()
	start := time.Now()
	res := &smtpResult{cfg: cfg, addr: addr, to: expand(cfg.to, cfg.toN)}
	body := makeBody(cfg.size)
	fixed := newMessageTemplate(cfg.from, start)
	t := &tickets{n: cfg.n, stop: stop.Done()}
	p := newPacer(cfg.rate)
	all := make([]*stats, cfg.conc)
	for i := range cfg.conc {
		w := &smtpWorker{
			cfg:   cfg,
			to:    res.to,
			msg:   message{fixed: fixed, runID: cfg.runID, body: body},
			rcpts: make([]string, cfg.rcpts),
			rerrs: make([]error, cfg.rcpts),
		}
		w.dialer.KeepAlive = -1
		res.workers = append(res.workers, w)
		all[i] = &w.st
	}
	prog := startProgress(stderr, "smtp", cfg.n, cfg.progress, all)
	var wg sync.WaitGroup
	for _, w := range res.workers {
		wg.Go(func() {
			defer guard(stderr, "smtp worker", &w.st.failed)
			w.run(hard, stop, t, p, addr)
		})
	}
	wg.Wait()
	prog.stop()
	res.elapsed = time.Since(start)
	for _, w := range res.workers {
		res.total.merge(&w.st)
	}
	return res
}

// ack is one recipient that got a 250 for message seq.
type ack struct {
	seq  int64
	rcpt int32 // index into the recipient list
}

// smtpWorker runs sessions one after another; it owns everything it writes.
type smtpWorker struct {
	cfg    *smtpConfig
	to     []string
	st     stats
	msg    message
	rcpts  []string // this message's recipients, reused
	ridx   []int32  // their indexes into to
	rerrs  []error  // per-recipient results of the stepwise path, reused
	acks   []ack
	timer  *time.Timer
	dialer net.Dialer // KeepAlive -1: no keep-alive probes on load connections
}

// run takes message tickets until the run is over, opening a connection
// for every -reuse messages.
func (w *smtpWorker) run(hard, stop context.Context, t *tickets, p pacer, addr string) {
	opt := smtpclient.Options{LocalName: w.cfg.helo, Timeout: w.cfg.cmdTimeout, Trace: w.st.trace}
	for {
		seq, ok := t.take()
		if !ok || !p.wait(stop.Done(), &w.timer, seq) {
			return
		}
		c, err := w.dial(hard, addr, opt)
		if err != nil {
			w.st.sessionsFail++
			w.st.addErr(err)
			w.failMessage()
			pause(hard, 10*time.Millisecond) // do not spin against a refusing server
			continue
		}
		w.st.sessions++
		w.session(hard, stop, c, t, p, seq)
	}
}

// dial connects to addr with a Dialer that turns TCP keep-alive off (Go
// turns it on for every connection: four setsockopt calls, of ~27 system
// calls per message) and reads the greeting. The hard context bounds the
// connect and, through an AfterFunc, the greeting.
func (w *smtpWorker) dial(hard context.Context, addr string, opt smtpclient.Options) (*smtpclient.Client, error) {
	start := time.Now()
	conn, err := w.dialer.DialContext(hard, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpclient: dial %s: %w", addr, err)
	}
	w.st.trace("connect", time.Since(start))
	stop := context.AfterFunc(hard, func() { _ = conn.Close() })
	defer stop()
	return smtpclient.NewClient(conn, opt)
}

// session sends up to -reuse messages on c, the first being seq, then QUIT.
func (w *smtpWorker) session(hard, stop context.Context, c *smtpclient.Client, t *tickets, p pacer, seq int64) {
	abort := context.AfterFunc(hard, func() { _ = c.Close() })
	defer abort()
	if err := w.open(c); err != nil {
		w.st.addErr(err)
		w.failMessage()
		_ = c.Close()
		return
	}
	if w.cfg.pipelining {
		if ok, _ := c.Extension("PIPELINING"); !ok {
			w.st.pipelineNoted = true
		}
	}
	for k := 1; ; k++ {
		if !w.send(c, seq) {
			_ = c.Close()
			return
		}
		if k >= w.cfg.reuse {
			break
		}
		var ok bool
		if seq, ok = t.take(); !ok || !p.wait(stop.Done(), &w.timer, seq) {
			break
		}
	}
	if err := c.Quit(); err != nil {
		w.st.addErr(err)
	}
}

// open says EHLO, then with -tls runs STARTTLS and says EHLO again, then
// with -auth authenticates.
func (w *smtpWorker) open(c *smtpclient.Client) error {
	if err := c.Hello(); err != nil {
		return err
	}
	if w.cfg.tls {
		if err := c.StartTLS(w.cfg.tlsConfig); err != nil {
			return err
		}
		if err := c.Hello(); err != nil {
			return err
		}
	}
	if w.cfg.auth != "" {
		return c.Auth(w.cfg.user, w.cfg.pass)
	}
	return nil
}

// failMessage counts a message lost to a connection problem before MAIL.
func (w *smtpWorker) failMessage() {
	w.st.failUnits++
	w.st.rcptFail += int64(w.cfg.rcpts)
	w.st.failed.Add(1)
	w.st.done.Add(1)
}

// send sends message seq and records the outcome; false when the connection
// is no longer usable.
func (w *smtpWorker) send(c *smtpclient.Client, seq int64) (alive bool) {
	n := int64(len(w.to))
	w.ridx = w.ridx[:0]
	for j := range w.rcpts {
		i := (seq*int64(w.cfg.rcpts) + int64(j)) % n
		w.rcpts[j] = w.to[i]
		w.ridx = append(w.ridx, int32(i))
	}
	body := w.msg.reset(seq, w.rcpts[0])
	start := time.Now()
	var rerrs []error
	var err error
	if w.cfg.pipelining {
		rerrs, err = c.Send(w.cfg.from, w.rcpts, body)
	} else {
		rerrs, err = w.rerrs, w.stepwise(c, body)
	}
	w.st.step("message").record(time.Since(start))
	w.account(seq, rerrs, err)
	return !broken(err)
}

// account records one message's per-recipient results.
func (w *smtpWorker) account(seq int64, rerrs []error, err error) {
	refused := 0
	for j, e := range rerrs {
		if e == nil {
			w.st.rcptOK++
			if w.cfg.acked != "" {
				w.acks = append(w.acks, ack{seq: seq, rcpt: w.ridx[j]})
			}
			continue
		}
		w.st.rcptFail++
		refused++
		if err == nil || e != err { // a refusal of its own, not the transaction's failure
			w.st.addErr(e)
		}
	}
	switch {
	case err != nil:
		w.st.failUnits++
		w.st.failed.Add(1)
		if !errors.Is(err, smtpclient.ErrNoRecipients) { // else counted per recipient above
			w.st.addErr(err)
		}
	default:
		w.st.okUnits++
		w.st.bytes += int64(w.msg.size())
		if refused > 0 {
			w.st.partialUnits++
		}
	}
	w.st.done.Add(1)
}

// stepwise does MAIL, RCPT…, DATA waiting for each reply, with the same
// result convention as Client.Send: w.rerrs[i] nil means recipient i was
// accepted, and a failed transaction marks every recipient with its error.
func (w *smtpWorker) stepwise(c *smtpclient.Client, body io.Reader) (err error) {
	clear(w.rerrs)
	defer func() {
		if err == nil {
			return
		}
		for i := range w.rerrs {
			if w.rerrs[i] == nil {
				w.rerrs[i] = err
			}
		}
		if !broken(err) {
			_ = c.Reset() // a failure of RSET shows on the next command
		}
	}()
	if err := c.Mail(w.cfg.from); err != nil {
		return err
	}
	ok := 0
	var last error
	for i, to := range w.rcpts {
		if err := c.Rcpt(to); err != nil {
			if broken(err) {
				return err
			}
			w.rerrs[i], last = err, err
			continue
		}
		ok++
	}
	if ok == 0 {
		return fmt.Errorf("%w: %w", smtpclient.ErrNoRecipients, last)
	}
	_, err = c.Data(body)
	return err
}

// broken reports whether err leaves the connection unusable: anything that
// is not a server reply (transport or protocol error), or a 421
// (RFC 5321 §3.8: the server is closing the channel).
func broken(err error) bool {
	if err == nil {
		return false
	}
	var r *reply.Reply
	if !errors.As(err, &r) {
		return true
	}
	return r.Code == 421
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// acked returns the Message-IDs that got a 250, per recipient.
func (r *smtpResult) acked() *ackedFile {
	f := &ackedFile{RunID: r.cfg.runID, Acked: make(map[string][]string)}
	for _, w := range r.workers {
		for _, a := range w.acks {
			rcpt := r.to[a.rcpt]
			f.Acked[rcpt] = append(f.Acked[rcpt], messageID(r.cfg.runID, a.seq))
		}
	}
	return f
}

// report summarizes the run.
func (r *smtpResult) report() report {
	t := &r.total
	rep := newReport("smtp", r.addr, r.cfg.conc, r.elapsed, t)
	rep.RunID = r.cfg.runID
	rep.Unit = "messages"
	rep.Partial = t.partialUnits
	rep.RcptOK, rep.RcptFailed = t.rcptOK, t.rcptFail
	if t.pipelineNoted {
		rep.Notes = append(rep.Notes, "the server did not offer PIPELINING: commands were sent one by one")
	}
	return rep
}
