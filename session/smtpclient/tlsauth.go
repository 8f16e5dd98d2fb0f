package smtpclient

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"gomta/session/reply"
)

// maxAuthInitial is the longest initial response sent on the AUTH line: the
// line must stay within 512 octets (RFC 4954 §4, RFC 5321 §4.5.3.1.4); a
// longer response goes after an empty 334 challenge.
const maxAuthInitial = 512 - len("AUTH PLAIN \r\n")

var (
	// ErrNoStartTLS: StartTLS on a server that does not offer STARTTLS.
	ErrNoStartTLS = errors.New("smtpclient: server does not offer STARTTLS")
	// ErrTLSActive: StartTLS on a connection already under TLS.
	ErrTLSActive = errors.New("smtpclient: TLS already active")
	// ErrNoAuth: the server offers neither AUTH PLAIN nor AUTH LOGIN.
	ErrNoAuth = errors.New("smtpclient: server offers no supported AUTH mechanism (PLAIN, LOGIN)")
	// ErrInsecureAuth: Auth would send a password in the clear to a server
	// that is not on loopback (see Options.InsecureAuth).
	ErrInsecureAuth = errors.New("smtpclient: refusing to send a password without TLS")
)

// tlsConfigFor returns cfg (or an empty config) with ServerName set to host
// when the caller left it empty; cfg itself is not modified.
func tlsConfigFor(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName != "" || cfg.InsecureSkipVerify {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	return cfg
}

// TLS reports whether the connection is under TLS (implicit or STARTTLS).
func (c *Client) TLS() bool { return c.tls != nil }

// TLSConnectionState returns the TLS state, and false on a plain connection.
func (c *Client) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// StartTLS sends STARTTLS (RFC 3207) and runs the TLS handshake under cfg
// (nil: Options.TLSConfig; ServerName defaults to the dialled host). It sends
// EHLO first when none was sent. Afterwards the client has forgotten the
// server's extensions (RFC 3207 §4.2); the next command sends EHLO again.
//
// A negative reply to STARTTLS is returned as a *reply.Reply and leaves the
// connection usable in plain text; a failed handshake breaks it.
func (c *Client) StartTLS(cfg *tls.Config) error {
	if err := c.ensureHello(); err != nil {
		return err
	}
	if c.tls != nil {
		return ErrTLSActive
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		return ErrNoStartTLS
	}
	c.cmd("STARTTLS", "", "")
	if _, err := c.roundTrip("starttls"); err != nil {
		return err
	}
	if err := c.expect(2); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		// Octets after the 220 came in plain text: a man in the middle
		// injecting replies (RFC 3207 §6). Nothing may be trusted.
		return c.fail(&ProtocolError{Msg: "data after the reply to STARTTLS"})
	}
	if cfg == nil {
		cfg = c.opt.TLSConfig
	}
	start := time.Now()
	tc := tls.Client(c.conn, tlsConfigFor(cfg, c.host))
	c.deadline()
	if err := tc.Handshake(); err != nil {
		return c.fail(fmt.Errorf("TLS handshake: %w", err))
	}
	c.opt.trace("tls", start)
	c.tls = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	c.ext, c.pipelining, c.helloDone = nil, false, false
	return nil
}

// HelloTLS sends EHLO and, when cfg is not nil and the server offers
// STARTTLS, upgrades the connection and sends EHLO again. Without STARTTLS
// on offer it stays in plain text and returns nil (opportunistic TLS, as a
// relay does); see TLS. Errors are those of Hello and StartTLS.
func (c *Client) HelloTLS(cfg *tls.Config) error {
	if err := c.Hello(); err != nil {
		return err
	}
	if cfg == nil || c.tls != nil {
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		return nil
	}
	if err := c.StartTLS(cfg); err != nil {
		return err
	}
	return c.Hello()
}

// Auth authenticates with AUTH PLAIN (RFC 4616), or AUTH LOGIN when PLAIN is
// not offered (RFC 4954). It sends EHLO first when none was sent. A refusal
// (535 and the like) is returned as a *reply.Reply. Without TLS it refuses to
// send the password unless the server is on loopback or Options.InsecureAuth
// is set. The password appears in no error.
func (c *Client) Auth(user, pass string) error {
	if err := c.ensureHello(); err != nil {
		return err
	}
	if c.tls == nil && !c.opt.InsecureAuth && !isLoopback(c.conn.RemoteAddr()) {
		return ErrInsecureAuth
	}
	if user == "" || strings.ContainsAny(user, "\x00\r\n") || strings.ContainsAny(pass, "\x00\r\n") {
		return badArgs("5.5.4", "bad user name or password characters")
	}
	mechs, ok := c.ext["AUTH"]
	if !ok {
		return ErrNoAuth
	}
	plain, login := false, false
	for m := range strings.FieldsSeq(mechs) {
		switch strings.ToUpper(m) {
		case "PLAIN":
			plain = true
		case "LOGIN":
			login = true
		}
	}
	switch {
	case plain:
		return c.authPlain(user, pass)
	case login:
		return c.authLogin(user, pass)
	}
	return ErrNoAuth
}

// authPlain sends the PLAIN response "\0user\0pass" in base64, as the
// initial response when it fits on the line.
func (c *Client) authPlain(user, pass string) error {
	raw := make([]byte, 0, 2+len(user)+len(pass))
	raw = append(append(append(append(raw, 0), user...), 0), pass...)
	resp := base64.StdEncoding.EncodeToString(raw)
	clear(raw)
	if len(resp) <= maxAuthInitial {
		c.cmd("AUTH PLAIN ", resp, "")
	} else {
		c.cmd("AUTH PLAIN", "", "")
		if err := c.authStep(); err != nil {
			return err
		}
		c.cmd(resp, "", "")
	}
	return c.authEnd()
}

// authLogin answers the two LOGIN prompts (user name, password).
func (c *Client) authLogin(user, pass string) error {
	c.cmd("AUTH LOGIN", "", "")
	if err := c.authStep(); err != nil {
		return err
	}
	c.cmd(base64.StdEncoding.EncodeToString([]byte(user)), "", "")
	if err := c.authStep(); err != nil {
		return err
	}
	c.cmd(base64.StdEncoding.EncodeToString([]byte(pass)), "", "")
	return c.authEnd()
}

// authStep sends what is buffered and expects a 334 challenge.
func (c *Client) authStep() error {
	if _, err := c.roundTrip("auth"); err != nil {
		return err
	}
	if c.rb.code != reply.CodeAuthContinue {
		return c.negative()
	}
	return nil
}

// authEnd sends the last response and expects 235. A further challenge is
// cancelled with "*" (RFC 4954 §4) and reported as the server's reply.
func (c *Client) authEnd() error {
	if _, err := c.roundTrip("auth"); err != nil {
		return err
	}
	switch c.rb.code {
	case reply.CodeAuthOK:
		return nil
	case reply.CodeAuthContinue:
		c.cmd("*", "", "")
		if _, err := c.roundTrip("auth"); err != nil {
			return err
		}
	}
	return c.negative()
}

// isLoopback reports whether a is a loopback address.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
