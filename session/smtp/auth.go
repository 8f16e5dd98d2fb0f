package smtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"gomta/session/logvocab"
)

// maxAuthLine bounds a line of an AUTH exchange, CRLF included: RFC 4954 §4
// lets a client response be up to 12288 octets.
const maxAuthLine = 12288

// maxCred bounds a decoded user name or password; longer ones are refused
// before the backend sees them.
const maxCred = 1024

// errAuthClosed ends a session after a lock-out reply was sent.
var errAuthClosed = errors.New("too many failed logins")

// authOffered reports whether AUTH may be used now: the backend checks
// passwords and the channel is encrypted or allowed in the clear.
func (s *session) authOffered() bool {
	return s.cfg.Auth != nil && (s.conn.TLS || s.cfg.AllowPlainAuth(s.conn.Remote))
}

// auth answers AUTH mechanism [initial-response] (RFC 4954 §4) for PLAIN
// (RFC 4616) and LOGIN. Credentials are never logged.
func (s *session) auth(arg string) (*Reply, error) {
	switch {
	case s.cfg.Auth == nil:
		return replyNotImpl, nil
	case s.conn.AuthUser != "":
		return replyAuthTwice, nil
	case !s.authOffered():
		return replyEncryptReq, nil
	}
	mech, initial, _ := strings.Cut(arg, " ")
	initial = strings.TrimSpace(initial)
	var user, pass string
	var r *Reply
	var err error
	switch strings.ToUpper(mech) {
	case "PLAIN":
		user, pass, r, err = s.authPlain(initial)
	case "LOGIN":
		user, pass, r, err = s.authLogin(initial)
	case "":
		return replyNeedArg, nil
	default:
		return replyAuthMech, nil
	}
	if r != nil || err != nil {
		return r, err
	}
	return s.checkPassword(user, pass)
}

// checkPassword takes the attempt's place in the limiter's failure counts,
// waits its delay, asks the backend and settles the place with the result:
// concurrent attempts never check more passwords than the limit allows.
func (s *session) checkPassword(user, pass string) (*Reply, error) {
	a, delay, ok := s.cfg.Limiter.BeginAuth(s.conn.Remote, user)
	if !ok {
		s.log.Warn("login locked out")
		return nil, s.closeWith(replyLockedOut, errAuthClosed)
	}
	defer a.Cancel() // gives the place back unless settled below
	if delay > 0 {
		if err := s.sleep(delay); err != nil {
			return nil, err
		}
	}
	if !s.cfg.Auth(s.ctx, user, pass) {
		a.Failed()
		s.cfg.Metrics.AuthFailed()
		s.log.Info("authentication failed")
		return replyAuthFailed, nil
	}
	a.Succeeded()
	s.conn.AuthUser = user
	s.log.Info("authenticated", zap.String(logvocab.User, user))
	return replyAuthOK, nil
}

// sleep waits d, or until the server cuts its connections or the session's
// time is up.
func (s *session) sleep(d time.Duration) error {
	if left := time.Until(s.end); d > left {
		d = max(left, 0)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		if !time.Now().Before(s.end) {
			return timeoutError{}
		}
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// authPlain reads the PLAIN response (RFC 4616 §2): [authzid] NUL authcid
// NUL passwd. An authorization identity other than the user is refused.
func (s *session) authPlain(initial string) (user, pass string, r *Reply, err error) {
	resp, r, err := s.authResponse(initial, replyAuthPlainGo)
	if r != nil || err != nil {
		return "", "", r, err
	}
	authz, rest, ok1 := bytes.Cut(resp, []byte{0})
	u, p, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || len(u) == 0 || len(u) > maxCred || len(p) > maxCred {
		return "", "", replyAuthMalform, nil
	}
	if len(authz) > 0 && !bytes.Equal(authz, u) {
		return "", "", replyAuthFailed, nil
	}
	return string(u), string(p), nil, nil
}

// authLogin runs the LOGIN exchange: user name (maybe as the initial
// response), then password, each after its 334 prompt.
func (s *session) authLogin(initial string) (user, pass string, r *Reply, err error) {
	u, r, err := s.authResponse(initial, replyAuthUsername)
	if r != nil || err != nil {
		return "", "", r, err
	}
	p, r, err := s.authResponse("", replyAuthPassword)
	if r != nil || err != nil {
		return "", "", r, err
	}
	if len(u) == 0 || len(u) > maxCred || len(p) > maxCred {
		return "", "", replyAuthMalform, nil
	}
	return string(u), string(p), nil, nil
}

// authResponse decodes the initial response when there is one ("=" is an
// empty one, RFC 4954 §4), else sends the challenge and reads the client's
// line. "*" cancels (501 5.0.0); bad base64 is 501 5.5.2.
func (s *session) authResponse(initial string, challenge *Reply) ([]byte, *Reply, error) {
	line := initial
	if line == "" {
		if err := s.reply(challenge); err != nil {
			return nil, nil, err
		}
		if err := s.flush(); err != nil {
			return nil, nil, err
		}
		s.nc.SetReadDeadline(s.deadline(s.cfg.CmdTimeout))
		var err error
		line, err = s.readLine(maxAuthLine)
		switch {
		case errors.Is(err, errLineTooLong):
			return nil, replyLineTooLong, nil
		case err != nil:
			return nil, nil, err
		}
		if cap(s.line) > maxCmdLine+1 { // do not keep a long line's buffer around
			s.line = nil // made again only when a line arrives in pieces
		}
		if line == "*" {
			return nil, replyAuthCancel, nil
		}
	}
	if line == "=" {
		return []byte{}, nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, replyAuthBase64, nil
	}
	return b, nil, nil
}
