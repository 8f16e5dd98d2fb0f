package pop3

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"

	"gomta/session/logvocab"
)

// maxAuthLine bounds an AUTH continuation line, CRLF included. RFC 4616 §2
// allows up to 255 octets each for authzid, authcid and passwd: 767 octets
// with the two NULs, 1024 in base64, plus CRLF.
const maxAuthLine = 1026

// cmdStls starts TLS (RFC 2595 §4): allowed in AUTHORIZATION when a TLS
// configuration is set and TLS is not already up. The session loop runs the
// handshake after the reply.
func (s *session) cmdStls(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	if s.cfg.TLSConfig == nil {
		return single(replyUnknown)
	}
	if s.tls {
		return single(replyTLSActive)
	}
	return response{reply: replyBeginTLS, startTLS: true}
}

// plainAllowed reports whether a clear-text password may be sent now.
func (s *session) plainAllowed() bool { return s.tls || s.plainAuth }

// cmdAuth runs SASL authentication (RFC 5034) with the PLAIN mechanism (RFC
// 4616), with an initial response or after a "+ " continuation. The
// credentials never reach a log or a reply.
func (s *session) cmdAuth(c cmd) response {
	if len(c.Args) == 0 {
		return single(replyMissingMech)
	}
	if len(c.Args) > 2 {
		return single(replyTooManyArgs)
	}
	if !strings.EqualFold(c.Args[0], "PLAIN") {
		return single(replyUnknownMech)
	}
	if !s.plainAllowed() {
		return single(replyNeedTLS)
	}
	var resp string
	if len(c.Args) == 2 {
		resp = c.Args[1]
		if resp == "=" { // RFC 5034 §4: an empty initial response
			resp = ""
		}
	} else {
		line, r, done := s.continuation()
		if done {
			return r
		}
		resp = line
	}
	if resp == "*" { // RFC 5034 §4: the client cancels
		return single(replyAuthCancelled)
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return single(replyBadBase64)
	}
	authz, user, pass, okPlain := parsePlain(raw)
	if !okPlain {
		return single(replyBadPlain)
	}
	if authz != "" && authz != user {
		return single(replyAuthzID)
	}
	return s.login(user, pass)
}

// continuation sends the empty "+ " challenge and reads the client's
// response line. done is true when the session must answer r instead
// (connection lost, idle, shutdown, line too long).
func (s *session) continuation() (line string, r response, done bool) {
	if _, err := s.w.WriteString("+ \r\n"); err != nil {
		return "", response{reply: replyInternal, close: true}, true
	}
	if err := s.w.Flush(); err != nil {
		return "", response{reply: replyInternal, close: true}, true
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
		return "", response{reply: replyInternal, close: true}, true
	}
	if s.srv.shell.Closing() {
		return "", response{reply: replyShutdown, close: true}, true
	}
	b, err := s.readLine(maxAuthLine)
	if err == errLineTooLong {
		return "", single(replyLineTooLong), true
	}
	if err != nil {
		var ne net.Error
		switch {
		case s.srv.shell.Closing():
			return "", response{reply: replyShutdown, close: true}, true
		case errors.As(err, &ne) && ne.Timeout():
			return "", response{reply: replyIdle, close: true}, true
		}
		// Lost connection: the reply will not arrive; the session ends.
		return "", response{reply: replyInternal, close: true}, true
	}
	return string(b), response{}, false
}

// parsePlain splits a PLAIN message "authzid NUL authcid NUL passwd" (RFC
// 4616 §2); authcid and passwd must not be empty.
func parsePlain(b []byte) (authz, user, pass string, ok bool) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

// login checks user's password under the Limiter and, on success, locks the
// maildrop and enters TRANSACTION. Shared by PASS and AUTH PLAIN. The
// attempt takes its place in the Limiter's failure counts before the
// password is checked, so that concurrent attempts never check more
// passwords than the limit allows; a backend that could not check gives the
// place back.
func (s *session) login(user, pass string) response {
	a, delay, allowed := s.cfg.Limiter.BeginAuth(s.raw.RemoteAddr(), user)
	if !allowed {
		s.log.Info("login refused, too many failures", zap.String("user", user))
		return response{reply: replyLockedOut, close: true}
	}
	defer a.Cancel() // gives the place back unless settled below
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return response{reply: replyShutdown, close: true}
		}
	}
	err := s.srv.be.Login(s.ctx, user, pass)
	if err != nil {
		if isAuthFailure(err) {
			a.Failed()
			s.cfg.Metrics.AuthFailed()
		}
		return single(s.backendReply("login failed", err, replyAuthFailed))
	}
	a.Succeeded()
	drop, err := s.srv.be.Open(s.ctx, user)
	if err != nil {
		return single(s.backendReply("open maildrop failed", err, replyAuthFailed))
	}
	s.drop = drop
	s.msgs = drop.List()
	s.deleted = make([]bool, len(s.msgs))
	s.state = stateTransaction
	n, size := s.count()
	// Every later line of the session names the mailbox's owner.
	s.log = s.log.With(zap.String(logvocab.User, user))
	s.log.Info("login", zap.Bool("tls", s.tls), zap.Int("messages", n), zap.Int64("bytes", size))
	return single(replyMaildrop(n, size))
}

// isAuthFailure tells a wrong password (counted by the Limiter) from a
// backend that could not check it.
func isAuthFailure(err error) bool {
	var r Reply
	return errors.Is(err, ErrAuth) || (errors.As(err, &r) && r.Code == CodeAuth)
}
