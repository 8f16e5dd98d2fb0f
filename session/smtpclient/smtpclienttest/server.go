// Package smtpclienttest is a small scriptable SMTP server for tests of SMTP
// clients (smtpclient, relay, the agent): it listens on 127.0.0.1:0, answers
// from callbacks, records every command line and every message as it came
// over the wire, and can hold pipelined replies or drop the connection at a
// chosen step. It is test equipment, not a server: no policy, no limits
// beyond what keeps a test from hanging.
package smtpclienttest

import (
	"bufio"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config scripts the server. Every callback may be nil (then the default
// positive reply is sent); a reply string may span lines ("250-a\r\n250 b").
type Config struct {
	Greeting string   // whole greeting line(s); default "220 fake.test ESMTP"
	Ext      []string // EHLO keywords; nil: EHLO is refused with 502 and HELO must be used
	// Strict, with "PIPELINING" in Ext, holds the replies to MAIL and RCPT
	// until DATA arrives, so a client that waits for each reply stalls (and
	// fails on its own timeout) instead of passing.
	Strict bool
	Mail   func(from string) string
	Rcpt   func(to string) string
	Data   func() string           // reply to the DATA command; default 354
	Body   func(raw []byte) string // final reply; default "250 2.0.0 queued"
	Drop   func(step string) bool  // close the connection on receiving step: a verb ("RCPT", "DATA") or "BODY" (after the whole body)
	Idle   time.Duration           // read deadline per line; default 10s
}

// Message is one transaction the server accepted (final reply 2xx or not).
type Message struct {
	From  string
	Rcpts []string // accepted recipients
	Raw   []byte   // the DATA content exactly as sent, dot-stuffing and final ".\r\n" included
}

// Server is a running fake server.
type Server struct {
	cfg   Config
	ln    net.Listener
	t     testing.TB
	wg    sync.WaitGroup
	mu    sync.Mutex
	lines []string
	msgs  []Message
	conns int
}

// Start listens on 127.0.0.1:0 and serves until the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Greeting == "" {
		cfg.Greeting = "220 fake.test ESMTP"
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, ln: ln, t: t}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the port alone, as the course's fake DNS P table writes it.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.Addr())
	return p
}

// Lines returns every command line received (without CRLF), bodies excluded.
func (s *Server) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Messages returns the transactions that reached the end of DATA.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.t.Errorf("smtpclienttest: panic: %v\n%s", p, debug.Stack())
		}
	}()
	defer func() { _ = c.Close() }()
	cs := &connState{s: s, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	cs.run()
}

type connState struct {
	s     *Server
	c     net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	ehlo  bool // EHLO (not HELO) was used: extensions apply
	held  bool // replies are being held (strict pipelining)
	from  string
	inTx  bool
	rcpts []string
}

func (cs *connState) reply(r string) bool {
	_, _ = cs.w.WriteString(r)
	_, _ = cs.w.WriteString("\r\n")
	if cs.held {
		return true
	}
	return cs.w.Flush() == nil
}

func (cs *connState) pipelining() bool {
	if !cs.ehlo || !cs.s.cfg.Strict {
		return false
	}
	for _, e := range cs.s.cfg.Ext {
		if strings.EqualFold(e, "PIPELINING") {
			return true
		}
	}
	return false
}

func (cs *connState) drop(step string) bool {
	return cs.s.cfg.Drop != nil && cs.s.cfg.Drop(step)
}

func (cs *connState) run() {
	cfg := &cs.s.cfg
	if !cs.reply(cfg.Greeting) {
		return
	}
	for range 100000 { // bounded: a test never sends this many commands
		_ = cs.c.SetReadDeadline(time.Now().Add(cfg.Idle))
		line, err := cs.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cs.s.mu.Lock()
		cs.s.lines = append(cs.s.lines, line)
		cs.s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if cs.drop(verb) {
			return
		}
		if verb != "MAIL" && verb != "RCPT" && cs.held {
			cs.held = false
		}
		if !cs.command(verb, arg) {
			return
		}
	}
}

// command answers one command; false ends the connection.
func (cs *connState) command(verb, arg string) bool {
	cfg := &cs.s.cfg
	switch verb {
	case "EHLO":
		if cfg.Ext == nil {
			return cs.reply("502 5.5.1 EHLO not implemented")
		}
		cs.ehlo = true
		var b strings.Builder
		b.WriteString("250")
		if len(cfg.Ext) > 0 {
			b.WriteString("-")
		} else {
			b.WriteString(" ")
		}
		b.WriteString("fake.test greets " + arg)
		for i, e := range cfg.Ext {
			sep := "-"
			if i == len(cfg.Ext)-1 {
				sep = " "
			}
			b.WriteString("\r\n250" + sep + e)
		}
		return cs.reply(b.String())
	case "HELO":
		cs.ehlo = false
		return cs.reply("250 fake.test")
	case "MAIL":
		from := pathArg(arg, "FROM:")
		r := "250 2.1.0 ok"
		if cfg.Mail != nil {
			if v := cfg.Mail(from); v != "" {
				r = v
			}
		}
		if strings.HasPrefix(r, "2") {
			cs.from, cs.inTx, cs.rcpts = from, true, nil
		}
		cs.held = cs.pipelining()
		return cs.reply(r)
	case "RCPT":
		to := pathArg(arg, "TO:")
		r := "250 2.1.5 ok"
		switch {
		case !cs.inTx:
			r = "503 5.5.1 need MAIL first"
		case cfg.Rcpt != nil:
			if v := cfg.Rcpt(to); v != "" {
				r = v
			}
		}
		if strings.HasPrefix(r, "2") {
			cs.rcpts = append(cs.rcpts, to)
		}
		return cs.reply(r)
	case "DATA":
		return cs.data()
	case "RSET":
		cs.inTx, cs.rcpts = false, nil
		return cs.reply("250 2.0.0 ok")
	case "NOOP":
		return cs.reply("250 2.0.0 ok")
	case "QUIT":
		cs.reply("221 2.0.0 bye")
		return false
	}
	return cs.reply("500 5.5.2 unknown command")
}

func (cs *connState) data() bool {
	cfg := &cs.s.cfg
	r := "354 go ahead"
	switch {
	case !cs.inTx || len(cs.rcpts) == 0:
		r = "503 5.5.1 no valid recipients"
	case cfg.Data != nil:
		if v := cfg.Data(); v != "" {
			r = v
		}
	}
	if !cs.reply(r) {
		return false
	}
	if !strings.HasPrefix(r, "354") {
		return true
	}
	var raw []byte
	for range 1 << 20 { // bounded number of body lines
		_ = cs.c.SetReadDeadline(time.Now().Add(cfg.Idle))
		line, err := cs.r.ReadString('\n')
		if err != nil {
			return false
		}
		raw = append(raw, line...)
		if line == ".\r\n" && (len(raw) == 3 || strings.HasSuffix(string(raw[:len(raw)-3]), "\r\n")) {
			break
		}
	}
	if cs.drop("BODY") {
		return false
	}
	cs.s.mu.Lock()
	cs.s.msgs = append(cs.s.msgs, Message{From: cs.from, Rcpts: cs.rcpts, Raw: raw})
	cs.s.mu.Unlock()
	cs.inTx, cs.rcpts = false, nil
	final := "250 2.0.0 queued"
	if cfg.Body != nil {
		if v := cfg.Body(raw); v != "" {
			final = v
		}
	}
	return cs.reply(final)
}

// pathArg pulls the address out of "FROM:<a@b> PARAMS".
func pathArg(arg, prefix string) string {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return arg
	}
	arg = strings.TrimSpace(arg[len(prefix):])
	if strings.HasPrefix(arg, "<") {
		if i := strings.IndexByte(arg, '>'); i > 0 {
			return arg[1:i]
		}
	}
	p, _, _ := strings.Cut(arg, " ")
	return p
}
