package pop3

import (
	"bytes"
	"strings"
)

// maxLine is the longest command line accepted, CRLF included (RFC 2449 §4:
// "The maximum length of a command line is 255 octets, including the
// terminating CRLF"). A longer line gets -ERR and the session stays in step.
const maxLine = 255

// state is where a session stands in RFC 1939's state machine.
type state uint8

const (
	stateAuthorization state = iota // RFC 1939 §4: before a successful PASS
	stateTransaction                // RFC 1939 §5: maildrop locked, commands act on it
	stateUpdate                     // RFC 1939 §6: after QUIT, deletions being committed
)

func (st state) String() string {
	switch st {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	case stateUpdate:
		return "UPDATE"
	}
	return "UNKNOWN"
}

// cmd is one parsed command line. Verb is upper-cased (keywords are
// case-insensitive, RFC 1939 §3); Arg is the rest of the line after the first
// space, verbatim (arguments are case-sensitive); Args is Arg split on spaces.
type cmd struct {
	Verb string
	Arg  string
	Args []string
}

// parseCommand splits a command line (without CRLF). It rejects control
// characters (RFC 2449 §4: keywords and arguments are printable ASCII; octets
// above 127 are tolerated in arguments for UTF-8 passwords).
func parseCommand(line []byte) (cmd, bool) {
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return cmd{}, false
		}
	}
	verb, arg, _ := bytes.Cut(line, []byte{' '})
	if len(verb) == 0 {
		return cmd{}, false
	}
	c := cmd{Verb: strings.ToUpper(string(verb)), Arg: string(arg)}
	c.Args = strings.Fields(c.Arg)
	return c, true
}

// isHTTP reports whether a line looks like an HTTP request line (a browser or
// a cross-protocol attack pointed at the POP3 port): such a session is closed
// at once, without a reply.
func isHTTP(line []byte) bool {
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "CONNECT "} {
		if bytes.HasPrefix(line, []byte(m)) {
			return bytes.Contains(line, []byte(" HTTP/"))
		}
	}
	return false
}

// handler runs one command in an allowed state and returns what to send.
type handler func(s *session, c cmd) response

// command is one row of the command table: the states it is valid in and
// its handler.
type command struct {
	inAuth, inTrans bool
	run             handler
}

// commands is the command table (RFC 1939 §4–§7, RFC 2449 §5, RFC 2595 §4,
// RFC 5034 §4, RFC 6856 §3).
var commands = map[string]command{
	"STLS": {inAuth: true, run: (*session).cmdStls},
	"AUTH": {inAuth: true, run: (*session).cmdAuth},
	"USER": {inAuth: true, run: (*session).cmdUser},
	"PASS": {inAuth: true, run: (*session).cmdPass},
	"UTF8": {inAuth: true, run: (*session).cmdUTF8},
	"QUIT": {inAuth: true, inTrans: true, run: (*session).cmdQuit},
	"CAPA": {inAuth: true, inTrans: true, run: (*session).cmdCapa},
	"NOOP": {inTrans: true, run: (*session).cmdNoop},
	"STAT": {inTrans: true, run: (*session).cmdStat},
	"LIST": {inTrans: true, run: (*session).cmdList},
	"RETR": {inTrans: true, run: (*session).cmdRetr},
	"DELE": {inTrans: true, run: (*session).cmdDele},
	"RSET": {inTrans: true, run: (*session).cmdRset},
	"TOP":  {inTrans: true, run: (*session).cmdTop},
	"UIDL": {inTrans: true, run: (*session).cmdUidl},
}

// capabilities is the CAPA listing (RFC 2449 §6) for this session: USER and
// SASL only where a clear-text password is allowed (RFC 2595 §2), STLS only
// before TLS (RFC 2595 §4). The listing is the same in both states (RFC 2449
// §5: AUTHORIZATION capabilities are announced in both).
func (s *session) capabilities() []string {
	caps := make([]string, 0, 10)
	caps = append(caps, "TOP", "UIDL") // RFC 2449 §6.1, §6.5
	if s.plainAllowed() {
		caps = append(caps, "USER", "SASL PLAIN") // RFC 2449 §6.3, RFC 5034 §5
	}
	caps = append(caps, "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE") // RFC 2449 §6.4, §6.6, RFC 3206 §6
	if s.cfg.TLSConfig != nil && !s.tls {
		caps = append(caps, "STLS") // RFC 2595 §4
	}
	// RFC 6856 §3: the USER argument says that USER and PASS take UTF-8,
	// announced where USER is.
	if s.plainAllowed() {
		caps = append(caps, "UTF8 USER")
	} else {
		caps = append(caps, "UTF8")
	}
	return append(caps, "IMPLEMENTATION gomta")
}

// allowed reports whether the command may run in st.
func (c command) allowed(st state) bool {
	switch st {
	case stateAuthorization:
		return c.inAuth
	case stateTransaction:
		return c.inTrans
	}
	return false
}
