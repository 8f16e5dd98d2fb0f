package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"gomta/session/pop3client"
)

const verifySynopsis = `Reads the acked Message-IDs of an smtp run (-acked FILE), logs into every
recipient's mailbox over POP3, reads each message's header (TOP n 0) and
reports, by Message-ID, what was delivered, lost (acked but absent),
duplicated (present more than once) and unexpected (of this run, present, but
never acked — legitimate after a timeout under at-least-once delivery).`

type verifyConfig struct {
	acked      string
	addr       string
	accounts   string
	pass       string
	login      string
	conc       int
	dele       bool
	allowDup   bool
	timeout    time.Duration
	cmdTimeout time.Duration
	json       bool
}

// verifyReport is the outcome of a verify run.
type verifyReport struct {
	Mode       string         `json:"mode"`
	RunID      string         `json:"run_id"`
	Target     string         `json:"target"`
	Mailboxes  int            `json:"mailboxes"`
	Acked      int64          `json:"acked"`
	Delivered  int64          `json:"delivered"`
	Lost       int64          `json:"lost"`
	Duplicated int64          `json:"duplicated"` // extra copies of acked messages
	Unexpected int64          `json:"unexpected"` // copies of this run's messages that were never acked
	Unverified int64          `json:"unverified"` // acked messages of mailboxes that could not be read
	Deleted    int64          `json:"deleted,omitempty"`
	PerMailbox []mailboxTally `json:"per_mailbox"`
	Errors     []errReport    `json:"errors"`
}

// mailboxTally is what one mailbox held of the run.
type mailboxTally struct {
	Rcpt       string   `json:"rcpt"`
	Acked      int64    `json:"acked"`
	Delivered  int64    `json:"delivered"`
	Lost       int64    `json:"lost"`
	Duplicated int64    `json:"duplicated"`
	Unexpected int64    `json:"unexpected"`
	Deleted    int64    `json:"deleted,omitempty"`
	LostIDs    []string `json:"lost_ids,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	var cfg verifyConfig
	fs := newFlagSet("verify", verifySynopsis, stderr)
	fs.StringVar(&cfg.acked, "acked", "", "acked `FILE` written by mtaload smtp -acked (required)")
	fs.StringVar(&cfg.addr, "pop", "127.0.0.1:110", "POP3 server `host:port` (loopback only)")
	fs.StringVar(&cfg.accounts, "accounts", "", "`FILE` of \"user password\" lines (login names as chosen by -login)")
	fs.StringVar(&cfg.pass, "pass", "", "password of every mailbox (when no -accounts)")
	fs.StringVar(&cfg.login, "login", "full", "POP3 login name: full (the recipient address) or local (its local part)")
	fs.IntVar(&cfg.conc, "c", 4, "mailboxes checked at once")
	fs.BoolVar(&cfg.dele, "dele", false, "delete this run's messages once counted")
	fs.BoolVar(&cfg.allowDup, "allow-dup", false, "duplicates do not make the exit status 1 (at-least-once after a crash)")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "hard limit on the whole run")
	fs.DurationVar(&cfg.cmdTimeout, "cmd-timeout", defaultCmdTimeout, "timeout per POP3 command")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	switch {
	case cfg.acked == "":
		return usageErr(stderr, "-acked is required")
	case cfg.login != "full" && cfg.login != "local":
		return usageErr(stderr, "-login must be full or local")
	case cfg.conc < 1 || cfg.timeout <= 0 || cfg.cmdTimeout <= 0:
		return usageErr(stderr, "-c must be at least 1; -timeout, -cmd-timeout must be positive")
	}
	acked, err := readAcked(cfg.acked)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	pass := map[string]string{}
	if cfg.accounts != "" {
		accts, err := readAccounts(cfg.accounts)
		if err != nil {
			return usageErr(stderr, "%v", err)
		}
		for _, a := range accts {
			pass[a.user] = a.pass
		}
	}
	addr, err := loopbackAddr(context.Background(), cfg.addr)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	rep := verify(&cfg, addr, acked, pass, stderr)
	if cfg.json {
		err = writeJSON(stdout, rep)
	} else {
		err = printVerify(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtaload: %v\n", err)
		return exitErrors
	}
	if rep.Lost > 0 || rep.Unverified > 0 || len(rep.Errors) > 0 || rep.Duplicated > 0 && !cfg.allowDup {
		return exitErrors
	}
	return exitOK
}

// runIDOf returns the run id of a Message-ID "<RUN.SEQ@mtaload>".
func runIDOf(id string) string {
	id = strings.TrimPrefix(id, "<")
	run, _, _ := strings.Cut(id, ".")
	return run
}

// verify checks every mailbox of the acked file, -c at a time.
func verify(cfg *verifyConfig, addr string, f *ackedFile, pass map[string]string, stderr io.Writer) *verifyReport {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	runID := f.RunID
	rcpts := make([]string, 0, len(f.Acked))
	for r, ids := range f.Acked {
		rcpts = append(rcpts, r)
		if runID == "" && len(ids) > 0 {
			runID = runIDOf(ids[0])
		}
	}
	slices.Sort(rcpts)
	rep := &verifyReport{Mode: "verify", RunID: runID, Target: addr, Mailboxes: len(rcpts)}
	tallies := make([]mailboxTally, len(rcpts))
	errStats := make([]stats, cfg.conc)
	t := &tickets{n: int64(len(rcpts)), stop: ctx.Done()}
	var wg sync.WaitGroup
	for w := range cfg.conc {
		st := &errStats[w]
		wg.Go(func() {
			defer guard(stderr, "verify worker", nil)
			for {
				i, ok := t.take()
				if !ok {
					return
				}
				rcpt := rcpts[i]
				login := rcpt
				if cfg.login == "local" {
					login, _, _ = strings.Cut(rcpt, "@")
				}
				pw, ok := pass[login]
				if !ok {
					pw = cfg.pass
				}
				tl := &tallies[i]
				tl.Rcpt = rcpt
				if err := checkMailbox(ctx, cfg, addr, login, pw, runID, f.Acked[rcpt], tl); err != nil {
					st.addErr(err)
					tl.Error = err.Error()
				}
			}
		})
	}
	wg.Wait()
	var total stats
	for i := range errStats {
		total.merge(&errStats[i])
	}
	rep.Errors = errorGroups(total.errs)
	for i := range tallies {
		tl := &tallies[i]
		if tl.Rcpt == "" { // never reached: -timeout
			tl.Rcpt, tl.Acked, tl.Error = rcpts[i], int64(len(f.Acked[rcpts[i]])), "not checked: -timeout"
		}
		rep.Acked += tl.Acked
		if tl.Error != "" {
			rep.Unverified += tl.Acked
		}
		rep.Delivered += tl.Delivered
		rep.Lost += tl.Lost
		rep.Duplicated += tl.Duplicated
		rep.Unexpected += tl.Unexpected
		rep.Deleted += tl.Deleted
	}
	rep.PerMailbox = tallies
	return rep
}

// checkMailbox counts the run's messages in one mailbox and fills tl. On an
// error the mailbox's counts stay zero (its acked messages are unverified).
func checkMailbox(ctx context.Context, cfg *verifyConfig, addr, login, pass, runID string, acked []string, tl *mailboxTally) error {
	tl.Acked = int64(len(acked))
	c, err := pop3client.Dial(ctx, addr, pop3client.Options{Timeout: cfg.cmdTimeout})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	if err := c.Login(login, pass); err != nil {
		return fmt.Errorf("login %s: %w", login, err)
	}
	list, err := c.List()
	if err != nil {
		return err
	}
	prefix := "<" + runID + "."
	seen := make(map[string]int64)
	var ours []int // message numbers of this run, for -dele
	for _, m := range list {
		hdr, err := c.Top(m.Num, 0)
		var pe *pop3client.Error
		if errors.As(err, &pe) { // TOP is optional (RFC 1939 §7)
			hdr, err = c.Retr(m.Num)
		}
		if err != nil {
			return err
		}
		id := headerMessageID(hdr)
		if runID != "" && strings.HasPrefix(id, prefix) {
			seen[id]++
			ours = append(ours, m.Num)
		}
	}
	want := make(map[string]bool, len(acked))
	for _, id := range acked {
		want[id] = true
		switch n := seen[id]; {
		case n == 0:
			tl.Lost++
			tl.LostIDs = append(tl.LostIDs, id)
		default:
			tl.Delivered++
			tl.Duplicated += n - 1
		}
	}
	for id, n := range seen {
		if !want[id] {
			tl.Unexpected += n
		}
	}
	if cfg.dele {
		for _, n := range ours {
			if err := c.Dele(n); err != nil {
				return err
			}
		}
	}
	if err := c.Quit(); err != nil {
		return err
	}
	if cfg.dele {
		tl.Deleted = int64(len(ours))
	}
	return nil
}

// headerMessageID returns the Message-ID (RFC 5322 §3.6.4) of a message
// header, "<…>" included, or "" when there is none. Folded lines are joined.
func headerMessageID(msg []byte) string {
	var field []byte
	found := false
	for line := range bytes.Lines(msg) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break // end of header
		}
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				field = append(field, line...)
			}
			continue
		}
		if found {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Message-ID") {
			found = true
			field = append(field, val...)
		}
	}
	v := strings.TrimSpace(string(field))
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return strings.ReplaceAll(v[i:i+j+1], " ", "")
		}
	}
	return v
}

func printVerify(w io.Writer, r *verifyReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "mtaload verify → %s  (run %s, %d mailboxes)\n", r.Target, r.RunID, r.Mailboxes)
	fmt.Fprintf(tw, "acked %d\tdelivered %d\tlost %d\tduplicated %d\tunexpected %d\tunverified %d\n",
		r.Acked, r.Delivered, r.Lost, r.Duplicated, r.Unexpected, r.Unverified)
	if r.Deleted > 0 {
		fmt.Fprintf(tw, "deleted %d\t\t\t\t\t\n", r.Deleted)
	}
	for _, m := range r.PerMailbox {
		if m.Lost+m.Duplicated+m.Unexpected == 0 && m.Error == "" {
			continue
		}
		fmt.Fprintf(tw, "  %s\tacked %d\tlost %d\tduplicated %d\tunexpected %d\t%s\n",
			m.Rcpt, m.Acked, m.Lost, m.Duplicated, m.Unexpected, m.Error)
		for i, id := range m.LostIDs {
			if i == 5 {
				fmt.Fprintf(tw, "    … %d more lost\t\t\t\t\t\n", len(m.LostIDs)-i)
				break
			}
			fmt.Fprintf(tw, "    lost %s\t\t\t\t\t\n", id)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printErrors(w, r.Errors, nil)
}
