package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"time"

	"go.uber.org/zap"

	"gomta/session/dotstuff"
	"gomta/session/logvocab"
	"gomta/session/serve"
)

// response is what a handler wants sent: a status line, optionally followed
// by a multi-line body (RFC 1939 §3) that body writes through a dot-stuffing
// writer, and whether the session ends afterwards.
type response struct {
	reply    Reply
	body     func(w io.Writer) error // only after a positive reply; nil for single-line
	close    bool
	startTLS bool // STLS: after the reply, discard buffered input and run the TLS handshake
}

func single(r Reply) response { return response{reply: r} }

// session is one POP3 connection. Only its own goroutine touches it, apart
// from Server.Shutdown setting raw's read deadline (Wake) and closing raw (Cut).
type session struct {
	srv  *Server
	cfg  *Config  // the server's configuration when the session began
	raw  net.Conn // the transport connection, never replaced
	conn net.Conn // raw, or the TLS connection over it once TLS is up
	r    *bufio.Reader
	w    *bufio.Writer
	log  *zap.Logger
	ctx  context.Context // the server's base context: cancelled when Shutdown cuts
	line []byte          // reused command line buffer

	refused   error // the Limiter refused the connection: -ERR and close
	tls       bool  // TLS is established (STLS done or implicit TLS)
	implicit  bool  // conn is a *tls.Conn whose handshake is still to run
	plainAuth bool  // Config.AllowPlainAuth's verdict for this client

	state   state
	user    string    // name given by USER, waiting for PASS
	utf8    bool      // the UTF8 command was given (RFC 6856 §3)
	drop    Maildrop  // locked maildrop in TRANSACTION
	msgs    []MsgInfo // fixed for the session (RFC 1939 §5)
	deleted []bool    // marked by DELE, cleared by RSET
	nDel    int       // count of true in deleted

	errors    serve.Errors // -ERR replies so far
	retrieved int          // RETR commands answered +OK
	bytesOut  int64        // message octets sent by RETR and TOP
}

// errLineTooLong is returned by readLine for a line over maxLine; the rest of
// the line has been consumed.
var errLineTooLong = errors.New("pop3: command line too long")

// deadlineWriter refreshes the connection's write deadline before each write
// so that a client that stops reading is cut after IdleTimeout.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.conn.Write(p)
}

func (s *Server) newSession(conn net.Conn) *session {
	cfg := s.cfg.Load()
	sess := &session{
		srv:  s,
		cfg:  cfg,
		raw:  conn,
		conn: conn,
		r:    bufio.NewReader(conn),
		w:    bufio.NewWriter(deadlineWriter{conn: conn, timeout: cfg.IdleTimeout}),
		log: s.log.With(zap.String(logvocab.SessionID, serve.SessionID()),
			zap.String("remote", conn.RemoteAddr().String())),
		ctx:       s.shell.Context(),
		line:      make([]byte, 0, maxLine),
		plainAuth: cfg.AllowPlainAuth == nil || cfg.AllowPlainAuth(conn.RemoteAddr()),
	}
	sess.errors.Max = cfg.MaxErrors
	if cfg.MaxErrors < 0 {
		sess.errors.Max = math.MaxInt
	}
	if tc, ok := conn.(*tls.Conn); ok {
		sess.raw = tc.NetConn()
		sess.implicit = true
	}
	return sess
}

// refuseTimeout bounds the refusal of a connection that never gets a session
// (including an implicit-TLS handshake to carry the refusal).
const refuseTimeout = 10 * time.Second

// refuse sends r to a connection that gets no session, and closes it.
func (s *session) refuse(r Reply) {
	s.conn.SetDeadline(time.Now().Add(min(refuseTimeout, s.cfg.IdleTimeout)))
	s.w.WriteString(r.String() + "\r\n")
	s.w.Flush()
	s.conn.Close()
}

// Run is the session goroutine: greeting, then the command loop until QUIT,
// an error, too many errors, a timeout or Shutdown. It never panics out and
// always closes the connection.
func (s *session) Run() {
	if s.refused != nil {
		s.log.Info("connection refused", zap.Error(s.refused))
		s.refuse(replyTooManyConns)
		return
	}
	start := time.Now()
	s.log.Debug("session start")
	defer s.end(start)
	defer serve.Recover(s.log, func() { s.sendFinal(replyInternal) })

	if s.implicit {
		if err := s.startTLS(s.conn.(*tls.Conn)); err != nil {
			s.log.Info("TLS handshake failed", zap.Error(err))
			return
		}
	}
	if err := s.send(single(replyGreeting(s.cfg.Hostname))); err != nil {
		s.log.Debug("write failed", zap.Error(err))
		return
	}
	s.loop()
}

// loop runs the dialogue: read a line, look the verb up in the command
// table, check it is allowed in this state, run it, write the reply, count
// errors. Bounded: each pass reads one line under a deadline, and the session
// ends at EOF, on a write error, on QUIT, or after MaxErrors errors.
func (s *session) loop() {
	for {
		line, err := s.readCommand()
		var resp response
		switch {
		case errors.Is(err, errLineTooLong):
			resp = single(replyLineTooLong)
		case err != nil:
			s.readFailed(err)
			return
		case isHTTP(line):
			s.log.Info("http request on pop3 port, closing")
			return
		default:
			resp = s.dispatch(line)
		}
		if !s.answer(resp) {
			return
		}
	}
}

// errShutdown stands for a read that is not begun because Shutdown has.
var errShutdown = errors.New("pop3: shutting down")

// flushError is a failure to send the replies before the next read.
type flushError struct{ error }

func (e flushError) Unwrap() error { return e.error }

// readCommand sends the pending replies unless a pipelined command is
// already buffered (RFC 2449 §6.6), then reads the next command line under
// the idle timeout.
func (s *session) readCommand() ([]byte, error) {
	if s.r.Buffered() == 0 {
		if err := s.w.Flush(); err != nil {
			return nil, flushError{err}
		}
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
		return nil, err
	}
	// Checked after setting the deadline, so a Shutdown that set its own
	// "now" deadline first (Wake) is seen here or wakes the read below.
	if s.srv.shell.Closing() {
		return nil, errShutdown
	}
	return s.readLine(maxLine)
}

// readFailed ends a session whose next command could not be read: a last
// reply for Shutdown and for the idle timeout, nothing for a client gone.
func (s *session) readFailed(err error) {
	var ne net.Error
	var fe flushError
	switch {
	case errors.As(err, &fe):
		s.log.Debug("write failed", zap.Error(err))
	case errors.Is(err, errShutdown), s.srv.shell.Closing():
		s.sendFinal(replyShutdown)
	case errors.As(err, &ne) && ne.Timeout():
		s.sendFinal(replyIdle)
	case err != io.EOF:
		s.log.Debug("read failed", zap.Error(err))
	}
}

// answer sends a handler's response and counts a negative one against
// MaxErrors (serve.Errors); it reports whether the session goes on.
func (s *session) answer(resp response) bool {
	err := s.send(resp)
	spent := !resp.reply.OK && s.errors.Count()
	switch {
	case err != nil:
		s.log.Debug("write failed", zap.Error(err))
		return false
	case resp.close:
		s.w.Flush()
		return false
	case spent:
		s.sendFinal(replyTooManyErrors)
		return false
	case resp.startTLS:
		return s.upgrade()
	}
	return true
}

// upgrade runs STLS's handshake once its +OK is sent (RFC 2595 §4).
func (s *session) upgrade() bool {
	if err := s.w.Flush(); err != nil {
		s.log.Debug("write failed", zap.Error(err))
		return false
	}
	if n := s.r.Buffered(); n > 0 {
		// Plaintext pipelined after STLS was sent before the protection
		// began: it must not run (RFC 2595 §4, the STARTTLS command-injection
		// class). The TLS connection reads raw directly, so it is dropped here.
		s.log.Info("input pipelined after STLS discarded", zap.Int("bytes", n))
	}
	if err := s.startTLS(tls.Server(s.raw, s.cfg.TLSConfig)); err != nil {
		s.log.Info("TLS handshake failed", zap.Error(err))
		return false
	}
	return true
}

// end closes the maildrop unless UPDATE took it, closes the connection and
// logs the session's summary.
func (s *session) end(start time.Time) {
	if s.drop != nil && s.state != stateUpdate {
		// Dropped connection, timeout, shutdown or panic: no UPDATE state,
		// nothing removed (RFC 1939 §6).
		s.drop.Close()
	}
	s.conn.Close()
	s.log.Info("session end",
		zap.String("state", s.state.String()),
		zap.Int("retrieved", s.retrieved),
		zap.Int("deleted", s.nDel),
		zap.Int("errors", s.errors.N()),
		zap.Int64("bytes", s.bytesOut),
		zap.Int64("duration_ms", time.Since(start).Milliseconds()))
}

// Wake interrupts a session blocked reading its next command (Shutdown); a
// session busy in a command sees Closing when it comes back to read.
func (s *session) Wake() { s.raw.SetReadDeadline(time.Now()) }

// Cut closes the transport connection at once (Shutdown's deadline passed).
func (s *session) Cut() { s.raw.Close() }

// startTLS runs the server side of tc's handshake under the idle timeout and
// moves the session onto it, with empty buffers and AUTHORIZATION state
// forgotten (RFC 2595 §4: the client starts over).
func (s *session) startTLS(tc *tls.Conn) error {
	if err := tc.SetDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
		return err
	}
	// Checked after setting the deadline, as in serve: a Shutdown that woke
	// no read yet must not be overridden.
	if s.srv.shell.Closing() {
		return errShutdown
	}
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return err
	}
	s.conn = tc
	s.r.Reset(tc)
	s.w.Reset(deadlineWriter{conn: tc, timeout: s.cfg.IdleTimeout})
	s.tls = true
	s.cfg.Metrics.TLS()
	s.implicit = false
	s.user = ""
	st := tc.ConnectionState()
	s.log.Info("TLS started",
		zap.String("tls_version", tls.VersionName(st.Version)),
		zap.String("tls_cipher", tls.CipherSuiteName(st.CipherSuite)))
	return nil
}

// dispatch parses one line and runs its handler if the state allows.
func (s *session) dispatch(line []byte) response {
	c, okSyntax := parseCommand(line)
	if !okSyntax {
		return single(replyBadSyntax)
	}
	cm, known := commands[c.Verb]
	if !known {
		s.log.Debug("unknown command")
		return single(replyUnknown)
	}
	if !cm.allowed(s.state) {
		if s.state == stateAuthorization {
			return single(replyNotLoggedIn)
		}
		return single(replyLoggedIn)
	}
	return cm.run(s, c)
}

// sendFinal writes a last reply before the session closes, best effort.
func (s *session) sendFinal(r Reply) {
	s.w.WriteString(r.String() + "\r\n")
	s.w.Flush()
}

// send writes the status line and, for a positive reply with a body, the
// dot-stuffed body and its terminating "." (RFC 1939 §3). A body that fails
// half-way is not terminated: the client must not take a truncated message
// for a whole one, and the session ends.
func (s *session) send(resp response) error {
	if _, err := s.w.WriteString(resp.reply.String() + "\r\n"); err != nil {
		if resp.body != nil {
			resp.body(failWriter{err}) // lets the body release what it holds
		}
		return err
	}
	if resp.body == nil || !resp.reply.OK {
		return nil
	}
	dw := dotstuff.NewWriter(s.w)
	if err := resp.body(dw); err != nil {
		return err
	}
	return dw.Close()
}

// failWriter fails every write with err.
type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// readLine reads one line of at most limit octets including its terminator.
// CRLF is the terminator; a bare LF is tolerated. A longer line is consumed to
// its end and reported as errLineTooLong. The returned slice is valid until
// the next call.
func (s *session) readLine(limit int) ([]byte, error) {
	s.line = s.line[:0]
	tooLong := false
	// Bounded by the read deadline: each pass consumes buffered input.
	for {
		frag, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(s.line)+len(frag) > limit {
				tooLong = true
			} else {
				s.line = append(s.line, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err // EOF or error mid-line: the partial line is dropped
		}
		break
	}
	if tooLong {
		return nil, errLineTooLong
	}
	line := s.line[:len(s.line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > limit-2 {
		return nil, errLineTooLong
	}
	return line, nil
}
