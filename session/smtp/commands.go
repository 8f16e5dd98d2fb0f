package smtp

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"gomta/session/address"
	"gomta/session/reply"
)

// extensions lists the EHLO keywords offered (RFC 5321 §4.1.1.1). STARTTLS
// only before TLS, AUTH only where it may be used (RFC 4954 §4: not in the
// clear unless AllowPlainAuth says so).
func (s *session) extensions() []string {
	ext := make([]string, 0, 8)
	ext = append(ext,
		"PIPELINING", // RFC 2920
		"8BITMIME",   // RFC 6152
		"SIZE "+strconv.FormatInt(max(s.cfg.MaxSize, 0), 10), // RFC 1870 §4: 0 = no fixed maximum
		"ENHANCEDSTATUSCODES", // RFC 2034
		"CHUNKING",            // RFC 3030
		"DSN",                 // RFC 3461
		"SMTPUTF8",            // RFC 6531
	)
	if s.cfg.TLSConfig != nil && !s.conn.TLS {
		ext = append(ext, "STARTTLS") // RFC 3207
	}
	if s.authOffered() {
		ext = append(ext, "AUTH PLAIN LOGIN") // RFC 4954, RFC 4616
	}
	return append(ext, "HELP") // RFC 5321 §4.1.1.8
}

// helo answers HELO (RFC 5321 §4.1.1.1). Like EHLO it resets the transaction.
func (s *session) helo(arg string) (*Reply, error) {
	if !s.greet(arg) {
		return replyNeedDomain, nil
	}
	return &Reply{Code: reply.CodeOK, Text: s.greeting()}, nil
}

// ehlo answers EHLO with the extensions, one per line (RFC 5321 §4.1.1.1).
func (s *session) ehlo(arg string) (*Reply, error) {
	if !s.greet(arg) {
		return replyNeedDomain, nil
	}
	lines := append([]string{s.greeting()}, s.extensions()...)
	return &Reply{Code: reply.CodeOK, Text: strings.Join(lines, "\n")}, nil
}

// greeting is the first line of the HELO/EHLO reply. The client's name is cut
// to a domain's length so that the line stays within the 512 octets of a reply
// line (RFC 5321 §4.5.3.1.5).
func (s *session) greeting() string {
	name := s.conn.Helo
	if len(name) > address.MaxDomain {
		name = name[:address.MaxDomain]
	}
	return s.cfg.Hostname + " greets " + name
}

// greet records the client's name. Its form is not checked (clients send
// address literals, bare names, anything); only an empty one is refused.
func (s *session) greet(arg string) bool {
	name, _, _ := strings.Cut(arg, " ")
	if name == "" {
		return false
	}
	s.conn.Helo = printable(name)
	s.resetTx()
	s.state = stateReady
	return true
}

// printable replaces octets outside printable ASCII, so that a client's name
// can go in replies, logs and the Received header as it is.
func printable(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '?'
		}
		return r
	}, v)
}

func (s *session) resetTx() {
	s.abortDraft()
	s.from, s.rcpts, s.declared, s.eightBit, s.smtputf8 = "", nil, 0, false, false
	s.dsn = dsnTx{}
	if s.state > stateReady && s.state != stateQuit {
		s.state = stateReady
	}
}

// mail answers MAIL FROM:<reverse-path> [SIZE=n] [BODY=7BIT|8BITMIME]
// [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext] (RFC 5321 §4.1.1.2, RFC 1870,
// RFC 6152, RFC 6531, RFC 3461).
func (s *session) mail(arg string) (*Reply, error) {
	pa, err := parsePathArg(arg, "FROM")
	if r := pathReply(err, replyBadSender); r != nil {
		return r, nil
	}
	mp, r := parseMailParams(pa.params)
	if r != nil {
		return r, nil
	}
	if s.cfg.MaxSize != NoLimit && mp.size > s.cfg.MaxSize {
		return replySizeExceeded, nil
	}
	if !mp.smtputf8 && !address.IsASCII(pa.addr) {
		return replyNonASCIISender, nil
	}
	if err := s.srv.be.Mail(s.ctx, &s.conn, pa.addr); err != nil {
		return s.backendReply(err, zap.String("mail_from", pa.addr)), nil
	}
	s.from, s.declared, s.eightBit, s.smtputf8 = pa.addr, mp.size, mp.eightBit, mp.smtputf8
	s.dsn = dsnTx{ret: mp.ret, envID: mp.envID}
	s.state = stateMail
	return replySenderOK, nil
}

// pathReply turns an error of parsePathArg into a reply: address errors are
// told with bad (sender or recipient syntax), the others are 501 5.5.4.
func pathReply(err error, bad func(string) *Reply) *Reply {
	var ae address.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae), errors.Is(err, errPathLong):
		return bad(err.Error())
	}
	return replyBadSyntax(err.Error())
}

// rcpt answers RCPT TO:<forward-path> [NOTIFY=...] [ORCPT=...] (RFC 5321
// §4.1.1.3, RFC 3461 §4.1, §4.2). "<Postmaster>" without a domain is
// accepted as §4.1.1.3 requires and handed to the backend as it was
// written. A repeated recipient keeps the parameters it was first given.
func (s *session) rcpt(arg string) (*Reply, error) {
	pa, err := parsePathArg(arg, "TO")
	if r := pathReply(err, replyBadRcpt); r != nil {
		return r, nil
	}
	if pa.addr == "" {
		return replyBadRcpt("null path not allowed"), nil
	}
	rd, r := parseRcptParams(pa.params)
	if r != nil {
		return r, nil
	}
	if !s.smtputf8 && !address.IsASCII(pa.addr) {
		return replyNonASCIIRcpt, nil
	}
	for _, r := range s.rcpts {
		if r == pa.addr { // a repeated recipient gets the mail once
			return replyRcptOK, nil
		}
	}
	if s.cfg.MaxRcpts != NoLimit && len(s.rcpts) >= s.cfg.MaxRcpts {
		return replyTooMany, nil
	}
	if err := s.srv.be.Rcpt(s.ctx, &s.conn, s.from, pa.addr); err != nil {
		return s.backendReply(err, zap.String("rcpt", pa.addr)), nil
	}
	s.rcpts = append(s.rcpts, pa.addr)
	if rd != (RcptDSN{}) {
		if s.dsn.rcpts == nil {
			s.dsn.rcpts = make(map[string]RcptDSN)
		}
		s.dsn.rcpts[pa.addr] = rd
	}
	s.state = stateRcpt
	return replyRcptOK, nil
}

// backendReply is the reply for an error of the backend: a negative *Reply as
// it is, anything else (a positive or malformed Reply too) 451 4.3.0, with the
// detail in the log only.
func (s *session) backendReply(err error, fields ...zap.Field) *Reply {
	var r *Reply
	if errors.As(err, &r) && r.Code >= 400 && r.Code <= 599 {
		return r
	}
	s.log.Error("backend error", append(fields, zap.Error(err))...)
	return replyLocalError
}

func (s *session) rset(arg string) (*Reply, error) {
	if arg != "" {
		return replyNoArgs, nil
	}
	s.resetTx()
	return replyOK, nil
}

func (s *session) noop(string) (*Reply, error) { return replyOK, nil }

// vrfy never tells whether a mailbox exists (RFC 5321 §3.5.3, §7.3).
func (s *session) vrfy(arg string) (*Reply, error) {
	if arg == "" {
		return replyNeedArg, nil
	}
	return replyVrfy, nil
}

func (s *session) notImplemented(string) (*Reply, error) { return replyNotImpl, nil }

func (s *session) help(string) (*Reply, error) { return replyHelp, nil }

func (s *session) quit(string) (*Reply, error) {
	s.state = stateQuit
	return replyBye(s.cfg.Hostname), nil
}

// receivedHeader renders the trace header put before the body (RFC 5321
// §4.4, RFC 5322 §3.6.7), folded so that no line gets long.
func (s *session) receivedHeader(id string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(s.conn.Helo)
	b.WriteString(" (")
	b.WriteString(tcpInfo(s.conn.Remote))
	b.WriteString(")\r\n\tby ")
	b.WriteString(s.cfg.Hostname)
	b.WriteString(" (gomta) with ")
	b.WriteString(s.protocol())
	b.WriteString(" id ")
	b.WriteString(id)
	if len(s.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(s.rcpts[0])
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// protocol is the "with" clause of the Received header (RFC 3848): ESMTP,
// plus S under TLS and A once authenticated; for a transaction that declared
// SMTPUTF8, UTF8SMTP with the same suffixes (RFC 6531 §4.3 registers
// UTF8SMTP, UTF8SMTPA, UTF8SMTPS and UTF8SMTPSA).
func (s *session) protocol() string {
	if s.smtputf8 {
		return "UTF8SMTP" + strings.TrimPrefix(s.esmtpProtocol(), "ESMTP")
	}
	return s.esmtpProtocol()
}

func (s *session) esmtpProtocol() string {
	switch {
	case s.conn.TLS && s.conn.AuthUser != "":
		return "ESMTPSA"
	case s.conn.TLS:
		return "ESMTPS"
	case s.conn.AuthUser != "":
		return "ESMTPA"
	}
	return "ESMTP"
}

// tcpInfo is the client's address as an address literal (RFC 5321 §4.1.3).
func tcpInfo(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return printable(a.String())
	}
	if strings.Contains(host, ":") {
		return "[IPv6:" + host + "]"
	}
	return "[" + host + "]"
}
