package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"gomta/session/logvocab"
	"gomta/session/reply"
	"gomta/session/serve"
)

// closeLinger bounds how long a closing session reads what the client still
// sends after the last reply, waiting for it to close its side.
const closeLinger = 500 * time.Millisecond

// closeDrain bounds what a closing session reads and throws away.
const closeDrain = 64 << 10

// maxCmdLine is the longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
const maxCmdLine = 512

// state is where a session stands in the SMTP dialogue (RFC 5321 §4.1.4).
type state uint8

const (
	stateGreeted state = iota // greeting sent; HELO or EHLO expected
	stateReady                // HELO/EHLO done, no mail transaction
	stateMail                 // MAIL accepted, no recipient yet
	stateRcpt                 // at least one recipient accepted
	stateChunk                // BDAT chunks taken, the LAST one not yet (RFC 3030)
	stateQuit                 // QUIT answered; the session ends
)

// stateSet is a set of states, for the command table.
type stateSet uint8

func states(sts ...state) stateSet {
	var ss stateSet
	for _, st := range sts {
		ss |= 1 << st
	}
	return ss
}

func (ss stateSet) has(st state) bool { return ss&(1<<st) != 0 }

var anyState = states(stateGreeted, stateReady, stateMail, stateRcpt, stateChunk)

// command is one entry of the command table: the states it is allowed in, the
// reply when it comes in another (after HELO/EHLO; before it, replyNeedHelo),
// whether it must end a pipelined group, and its handler. A handler returns
// the reply to send, or an error when the connection failed and the session
// must end.
type command struct {
	allowed  stateSet
	outOfSeq *Reply
	last     bool
	handle   func(s *session, arg string) (*Reply, error)
}

// commands is the command table. A handler that answered on its own (STARTTLS
// after its handshake) returns a nil reply.
//
// last marks the commands that RFC 2920 §3.1 allows only at the end of a
// pipelined group, because the client must see their reply before it goes on
// (as Postfix's smtpd_forbid_unauth_pipelining and Exim's smtp_enforce_sync
// enforce it: 554 5.5.0 and close when more input waits). DATA is one
// too, but only when it is refused: after a 354 the message text follows at
// once (see loop). QUIT is not marked: the session ends after it anyway.
var commands = map[string]command{
	"HELO":     {allowed: anyState, last: true, handle: (*session).helo},
	"EHLO":     {allowed: anyState, last: true, handle: (*session).ehlo},
	"STARTTLS": {allowed: states(stateReady), outOfSeq: replyTLSInTx, handle: (*session).starttls},
	"AUTH":     {allowed: states(stateReady), outOfSeq: replyAuthInTx, handle: (*session).auth},
	"MAIL":     {allowed: states(stateReady), outOfSeq: replyNestedMail, handle: (*session).mail},
	"RCPT":     {allowed: states(stateMail, stateRcpt), outOfSeq: replyNeedMail, handle: (*session).rcpt},
	"DATA":     {allowed: states(stateRcpt), outOfSeq: replyNeedRcpt, handle: (*session).data},
	"BDAT":     {allowed: anyState, handle: (*session).bdat}, // checks the state itself: its chunk is read whatever the reply
	"RSET":     {allowed: anyState, handle: (*session).rset},
	"NOOP":     {allowed: anyState, last: true, handle: (*session).noop},
	"VRFY":     {allowed: anyState, last: true, handle: (*session).vrfy},
	"EXPN":     {allowed: anyState, last: true, handle: (*session).notImplemented},
	"HELP":     {allowed: anyState, handle: (*session).help},
	"QUIT":     {allowed: anyState, handle: (*session).quit},
}

// httpMethods are request-line verbs of HTTP: a client that sends one first is
// not speaking SMTP (e.g. a browser sent to the port, or cross-protocol abuse).
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

var errLineTooLong = errors.New("smtp: command line too long")

// session is one SMTP connection. Only its own goroutine touches its fields,
// except mu/idle/nc, which Shutdown uses to wake (Wake) or cut (Cut) it.
type session struct {
	srv   *Server
	cfg   *Config
	nc    net.Conn           // the TCP connection: deadlines and Close, also under TLS
	tc    *tls.Conn          // the TLS layer over nc once TLS is on; br and bw then use it
	br    *bufio.Reader      // nil while idle with nothing buffered (inbuf.go)
	rc    syscall.RawConn    // nc's descriptor, for awaitInput; nil: br is kept
	src   idleSource         // what br reads from after an idle wait
	fill  func(uintptr) bool // fillFromFD, made once
	wbuf  *[readBufSize]byte // fillFromFD's results
	wn    int
	werr  error
	bw    *bufio.Writer // pending replies; nil when none (taken from srv.writers, see out)
	wc    io.Writer     // what bw writes to: nc, or tc once TLS is on
	log   *zap.Logger
	ctx   context.Context
	start time.Time
	end   time.Time // start + SessionTimeout: no deadline goes beyond it

	implicitTLS bool  // accepted by ServeTLS: handshake before the greeting
	refused     error // the Limiter refused the connection: 421 and close

	mu   sync.Mutex
	idle bool // blocked waiting for the next command

	state  state
	conn   Peer         // the client as the backend sees it
	errors serve.Errors // negative replies so far
	line   []byte       // a command line read in pieces; nil until one is
	inData bool         // the current DATA command was answered 354 (its text follows)

	// The mail transaction (RFC 5321 §3.3); cleared by resetTx.
	from     string
	rcpts    []string
	declared int64  // SIZE= of MAIL FROM
	eightBit bool   // BODY=8BITMIME
	dsn      dsnTx  // RFC 3461 parameters (dsnparams.go)
	smtputf8 bool   // SMTPUTF8 declared on MAIL (RFC 6531)
	draft    *draft // the message of BDAT chunks (stateChunk)
}

func (srv *Server) newSession(nc net.Conn) *session {
	cfg := srv.cfg.Load()
	s := &session{
		srv:   srv,
		cfg:   cfg,
		nc:    nc,
		rc:    rawConn(nc),
		wc:    nc,
		ctx:   srv.shell.Context(),
		start: time.Now(),
		end:   time.Now().Add(cfg.SessionTimeout),
		conn:  Peer{Remote: nc.RemoteAddr()},
	}
	s.errors.Max = cfg.MaxErrors
	if cfg.MaxErrors == NoLimit {
		s.errors.Max = math.MaxInt
	}
	s.log = cfg.Logger.WithLazy(zap.String(logvocab.Proto, logvocab.SMTP), zap.String(logvocab.SessionID, serve.SessionID()),
		zap.String("remote", addrString(nc.RemoteAddr())))
	return s
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Run is the session goroutine: greeting, then one command after another until
// QUIT, an error, too many errors, a timeout or Shutdown.
func (s *session) Run() {
	defer s.nc.Close()
	defer s.releaseReader()
	defer s.abortDraft()
	defer serve.Recover(s.log, func() {
		s.reply(replyPanic)
		s.flush()
	})
	if s.refused != nil {
		s.log.Info("connection refused", zap.Error(s.refused))
		if !s.implicitTLS { // a plain-text reply would be noise to a TLS client
			s.closeWith(replyTooManyConn, s.refused)
		}
		return
	}
	s.conn.Trusted = s.cfg.Trusted(s.conn.Remote) // here, where a panic is recovered
	s.log.Debug("session start")
	var reason error
	if s.implicitTLS {
		reason = s.handshake()
	}
	if reason == nil {
		reason = s.loop()
	}
	s.log.Info("session end", zap.Int64("duration_ms", time.Since(s.start).Milliseconds()), zap.NamedError("error", reason))
}

// loop runs the dialogue; it returns why the session ended (nil for QUIT).
func (s *session) loop() error {
	s.reply(replyGreeting(s.cfg.Hostname))
	for first := true; ; first = false {
		if s.srv.shell.Closing() {
			return s.closeWith(replyShutdown(s.cfg.Hostname), errShutdown)
		}
		if err := s.flushIfIdle(); err != nil {
			return err
		}
		line, err := s.readCommand()
		switch {
		case errors.Is(err, errLineTooLong):
			if done := s.answer(replyLineTooLong); done != nil {
				return done
			}
			continue
		case isTimeout(err) && s.srv.shell.Closing():
			return s.closeWith(replyShutdown(s.cfg.Hostname), errShutdown)
		case isTimeout(err):
			return s.closeWith(s.timeoutReply(), err)
		case err != nil:
			return err
		}
		verb, arg := parseCommand(line)
		if first && httpMethods[verb] {
			return errHTTP // close at once, without a reply
		}
		s.transcript(verb, line)
		s.inData = false
		r, err := s.dispatch(verb, arg)
		if err != nil {
			if isTimeout(err) {
				return s.closeWith(s.timeoutReply(), err)
			}
			return err
		}
		if r == nil { // answered by the handler itself
			continue
		}
		if done := s.answer(r); done != nil {
			return done
		}
		if s.state == stateQuit {
			s.closeGracefully()
			return nil
		}
		if s.endsGroup(verb) && s.inputPending() {
			return s.pipeliningViolation(verb)
		}
	}
}

// endsGroup reports whether the command just answered must be the last of a
// pipelined group (RFC 2920 §3.1): one marked last in the command table, or a
// DATA that was refused, after which anything pipelined would be the message
// text run as commands.
func (s *session) endsGroup(verb string) bool {
	if verb == "DATA" {
		return !s.inData
	}
	return commands[verb].last
}

// inputPending reports whether the client sent more input before the reply
// to the command just read (the reply is not sent yet): input already in the
// reader's buffer, or still in the kernel's (a group that ends exactly at the
// reader's buffer size). Plaintext that the TLS layer has decrypted but not
// handed on is not seen (crypto/tls does not tell).
func (s *session) inputPending() bool {
	return s.buffered() > 0 || kernelPending(s.nc)
}

// pipeliningViolation ends a session whose client sent more input before the
// reply to a command that must end a group (RFC 2920 §3.1): 554 5.5.0, as
// Postfix (smtpd_forbid_unauth_pipelining) and Exim (smtp_enforce_sync) do,
// rather than run what may be a message text as commands. The input is not
// logged: it may be a message body.
func (s *session) pipeliningViolation(verb string) error {
	s.log.Warn("pipelining violation", zap.String("command", verb), zap.Int("bytes", s.buffered()))
	return s.closeWith(replyPipelining, errPipelining)
}

// timeoutReply is the 421 for a read that timed out: the session's time is
// up, or the client was idle too long.
func (s *session) timeoutReply() *Reply {
	if !time.Now().Before(s.end) {
		return replySessionTimeout(s.cfg.Hostname)
	}
	return replyIdleTimeout(s.cfg.Hostname)
}

// deadline is now + d, but never beyond the end of the session.
func (s *session) deadline(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if t.After(s.end) {
		return s.end
	}
	return t
}

// transcript logs a command line at debug level. AUTH is cut after its
// mechanism: an initial response carries the password (RFC 4954 §4). AUTH
// continuation lines are never logged, nor lines that are no command.
func (s *session) transcript(verb, line string) {
	ce := s.log.Check(zap.DebugLevel, "command received")
	if ce == nil {
		return
	}
	if _, known := commands[verb]; !known {
		// Perhaps an AUTH response sent out of step: it may hold a password.
		line = "[unknown command redacted]"
	} else if verb == "AUTH" {
		_, arg := parseCommand(line)
		mech, _, _ := strings.Cut(arg, " ")
		line = "AUTH " + printable(mech) + " [redacted]"
	}
	ce.Write(zap.String("command", line))
}

var (
	errShutdown      = errors.New("server shutting down")
	errHTTP          = errors.New("HTTP request on SMTP port")
	errTooManyErrors = errors.New("too many errors")
	errPipelining    = errors.New("input pipelined after a command that ends a group")
)

// dispatch looks the verb up in the command table, checks the order and calls
// the handler.
func (s *session) dispatch(verb, arg string) (*Reply, error) {
	cmd, ok := commands[verb]
	switch {
	case !ok:
		return replyUnknownCmd, nil
	case !cmd.allowed.has(s.state) && s.state == stateGreeted:
		return replyNeedHelo, nil
	case !cmd.allowed.has(s.state) && s.state == stateChunk:
		return replyInChunks, nil // DATA too: RFC 3030 §2, no mixing in one transaction
	case !cmd.allowed.has(s.state):
		return cmd.outOfSeq, nil
	}
	return cmd.handle(s, arg)
}

// answer sends the reply of a command and counts negative (4xx and 5xx)
// replies against MaxErrors (serve.Errors); once they are spent it sends 421
// and returns the error that ends the session. The recipient limit's 452 is
// not counted: RFC 5321 §4.5.3.1.10 has the client send the other
// recipients in a later transaction, so it is flow control, and counting it
// would cut off any transaction with MaxErrors recipients over the limit.
func (s *session) answer(r *Reply) error {
	if err := s.reply(r); err != nil {
		return err
	}
	if r.Code < 400 {
		return nil
	}
	s.log.Info("command refused", zap.Int("smtp_code", r.Code), zap.String("enhanced", r.Enhanced), zap.String("error", r.Text))
	if r != replyTooMany && s.errors.Count() {
		return s.closeWith(replyTooManyErrs, errTooManyErrors)
	}
	return nil
}

// closeWith sends a last reply, closes the connection and returns why.
func (s *session) closeWith(r *Reply, why error) error {
	if err := s.reply(r); err == nil {
		s.closeGracefully()
	}
	return why
}

// closeGracefully flushes what is pending, then half-closes and drains the
// connection for a moment before it is closed, so that unread pipelined input
// does not make the kernel reset the connection and lose the last reply.
func (s *session) closeGracefully() {
	if s.flush() != nil {
		return
	}
	type closeWriter interface{ CloseWrite() error }
	var conn net.Conn = s.nc
	if s.tc != nil {
		conn = s.tc // CloseWrite sends TLS close_notify, then the TCP FIN
	}
	if cw, ok := conn.(closeWriter); ok && cw.CloseWrite() == nil {
		s.nc.SetReadDeadline(time.Now().Add(closeLinger))
		s.drain(conn, closeDrain)
	}
}

// Cut closes the connection at once (Shutdown's deadline passed).
func (s *session) Cut() { s.nc.Close() }

// Wake interrupts a session blocked waiting for its next command (Shutdown).
func (s *session) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle {
		s.nc.SetReadDeadline(time.Now())
	}
}

// setIdle marks the session as waiting for a command. It returns false when the
// server is closing, so that the session answers 421 instead of waiting.
func (s *session) setIdle(idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idle && s.srv.shell.Closing() {
		return false
	}
	s.idle = idle
	return true
}

// readCommand reads one command line, without its line end. A line over
// maxCmdLine is read to its end and thrown away: errLineTooLong. LF alone is
// accepted as the end of a command line (it cannot end DATA).
func (s *session) readCommand() (string, error) {
	s.nc.SetReadDeadline(s.deadline(s.cfg.CmdTimeout))
	if !s.setIdle(true) {
		return "", timeoutError{}
	}
	defer s.setIdle(false)
	if err := s.awaitInput(); err != nil {
		return "", err
	}
	return s.readLine(maxCmdLine)
}

// readLine reads one line of at most max octets, CRLF included, under the
// deadline already set.
func (s *session) readLine(max int) (string, error) {
	frag, err := s.br.ReadSlice('\n')
	if err == nil { // the whole line at once, as nearly always: no copy
		return trimLine(frag, max)
	}
	s.line = s.line[:0]
	tooLong := false
	for first := true; ; first = false {
		if !first {
			frag, err = s.br.ReadSlice('\n')
		}
		if !tooLong && len(s.line)+len(frag) <= max+1 {
			s.line = append(s.line, frag...)
		} else {
			tooLong = true
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if tooLong {
		return "", errLineTooLong
	}
	return trimLine(s.line, max)
}

// trimLine is a line read whole (LF at its end), without its line end; a
// line over max octets (CRLF counted) is errLineTooLong.
func trimLine(b []byte, max int) (string, error) {
	if len(b) > max+1 {
		return "", errLineTooLong
	}
	line := b[:len(b)-1] // the LF
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line)+2 > max {
		return "", errLineTooLong
	}
	return string(line), nil
}

// timeoutError stands for a read that Shutdown interrupted before it began.
type timeoutError struct{}

func (timeoutError) Error() string { return "smtp: interrupted" }
func (timeoutError) Timeout() bool { return true }

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// reply renders r (RFC 5321 §4.2.1: every line but the last has "-" after the
// code; RFC 2034: the enhanced code on each line) into the write buffer. Lines
// are flushed by flushIfIdle or flush.
func (s *session) reply(r *Reply) error {
	s.cfg.Metrics.Reply(r.Code)
	lines := strings.Split(r.Text, "\n")
	code := strconv.Itoa(r.Code)
	bw := s.out()
	for i, l := range lines {
		bw.WriteString(code)
		rest := strings.TrimRight(l, "\r")
		if r.Enhanced != "" {
			rest = strings.TrimSpace(r.Enhanced + " " + rest)
		}
		switch {
		case i < len(lines)-1:
			bw.WriteByte('-')
		case rest != "", r.Code == reply.CodeAuthContinue: // RFC 4954 §4: "334 " even when empty
			bw.WriteByte(' ')
		}
		bw.WriteString(rest)
		if _, err := bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
	return nil
}

// flushIfIdle sends buffered replies unless more pipelined commands are already
// read (RFC 2920 §3.2: replies may be held while commands are pending).
func (s *session) flushIfIdle() error {
	if s.buffered() > 0 {
		return nil
	}
	return s.flush()
}

// out returns the reply buffer, taking one from the server's pool if the
// session holds none. A session holds it only until the next flush, so an
// idle session (W6: 10,000 of them) keeps no write buffer.
func (s *session) out() *bufio.Writer {
	if s.bw == nil {
		s.bw = s.srv.writers.Get().(*bufio.Writer)
		s.bw.Reset(s.wc)
	}
	return s.bw
}

// flush sends buffered replies, within CmdTimeout, and gives the buffer back.
func (s *session) flush() error {
	if s.bw == nil {
		return nil
	}
	var err error
	if s.bw.Buffered() > 0 {
		t := s.deadline(s.cfg.CmdTimeout)
		if least := time.Now().Add(closeLinger); t.Before(least) {
			t = least // the last reply (421) after the session's time is up
		}
		s.nc.SetWriteDeadline(t)
		err = s.bw.Flush()
	}
	s.bw.Reset(nil)
	s.srv.writers.Put(s.bw)
	s.bw = nil
	return err
}
