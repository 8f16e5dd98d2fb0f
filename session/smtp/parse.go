package smtp

import (
	"errors"
	"strconv"
	"strings"

	"gomta/session/address"
)

// parseCommand splits a command line (without CRLF) into its verb, upper-cased
// (verbs are case-insensitive, RFC 5321 §2.4), and its argument with the
// surrounding spaces removed. The argument keeps its case.
func parseCommand(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(verb), strings.Trim(arg, " \t")
}

// pathArg is a parsed "FROM:<path> params" or "TO:<path> params" argument.
type pathArg struct {
	addr   string   // mailbox without brackets; "" for the null path <>
	params []string // ESMTP parameters, "KEYWORD[=value]", as sent
}

var (
	errNoKeyword  = errors.New(`expected "FROM:" or "TO:"`)
	errNoBrackets = errors.New("address must be enclosed in <>")
	errPathLong   = errors.New("path too long")
	errTrailing   = errors.New("junk after address")
)

// parsePathArg parses the argument of MAIL (kw "FROM") or RCPT (kw "TO"),
// RFC 5321 §4.1.1.2, §4.1.1.3: kw ":" path [SP parameters]. A space after the
// colon, which some clients send, is tolerated. The returned error says what is
// wrong; errors from the address itself are address.SyntaxError.
func parsePathArg(arg, kw string) (pa pathArg, err error) {
	if len(arg) < len(kw)+1 || !strings.EqualFold(arg[:len(kw)], kw) || arg[len(kw)] != ':' {
		return pa, errNoKeyword
	}
	rest := strings.TrimLeft(arg[len(kw)+1:], " ")
	if rest == "" || rest[0] != '<' {
		return pa, errNoBrackets
	}
	end := closingBracket(rest)
	if end < 0 {
		return pa, errNoBrackets
	}
	if end+1 > address.MaxPath {
		return pa, errPathLong
	}
	inner := rest[1:end]
	if kw == "TO" && strings.EqualFold(inner, "postmaster") {
		// RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> without a domain must be accepted.
		pa.addr = inner
	} else if pa.addr, err = parsePath(inner); err != nil {
		return pa, err
	}
	rest = rest[end+1:]
	if rest != "" && rest[0] != ' ' {
		return pa, errTrailing
	}
	pa.params = strings.Fields(rest)
	return pa, nil
}

// closingBracket returns the index of the '>' that closes the path opened by
// s[0] == '<', skipping quoted strings, or -1.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i
		}
	}
	return -1
}

// parsePath parses what is between the angle brackets: an optional source
// route (RFC 5321 §4.1.2 A-d-l, accepted and ignored as §3.3 and Appendix C
// require) and a mailbox, or nothing for the null path.
func parsePath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if p[0] == '@' {
		route, mbox, ok := strings.Cut(p, ":")
		if !ok {
			return "", address.SyntaxError("source route without ':'")
		}
		for _, hop := range strings.Split(route, ",") {
			if len(hop) < 2 || hop[0] != '@' || address.CheckDomain(hop[1:]) != nil {
				return "", address.SyntaxError("bad source route")
			}
		}
		p = mbox
	}
	// UTF-8 is parsed whatever the transaction declared, so that an address
	// that needs SMTPUTF8 gets 553 5.6.7 rather than a syntax error (the
	// callers check the declaration, RFC 6531 §3.5).
	if err := address.CheckUTF8(p); err != nil {
		return "", err
	}
	return p, nil
}

// mailParams holds the MAIL FROM parameters this server offers.
type mailParams struct {
	size     int64  // SIZE= (RFC 1870), 0 when absent
	eightBit bool   // BODY=8BITMIME (RFC 6152)
	smtputf8 bool   // SMTPUTF8 (RFC 6531 §3.4)
	ret      string // RET= (RFC 3461 §4.3), upper-cased; "" when absent
	envID    string // ENVID= (RFC 3461 §4.4), xtext; "" when absent
}

// parseMailParams parses the MAIL FROM parameters. An unknown keyword returns
// a 555 reply (RFC 5321 §4.1.1.11); a bad value or a repeated keyword a 501
// (a repeated DSN keyword a 555, dsnparams.go).
func parseMailParams(params []string) (mailParams, *Reply) {
	var mp mailParams
	seen := map[string]bool{}
	for _, p := range params {
		kw, val, hasVal := strings.Cut(p, "=")
		kw = strings.ToUpper(kw)
		if ok, r := mailDSN(kw, val, hasVal, &mp.ret, &mp.envID); ok {
			if r != nil {
				return mp, r
			}
			continue
		}
		if seen[kw] {
			return mp, replyBadSyntax("repeated parameter " + kw)
		}
		seen[kw] = true
		switch kw {
		case "SIZE": // RFC 1870 §3: SIZE=1*20DIGIT
			if !hasVal || val == "" || len(val) > 20 || strings.Trim(val, "0123456789") != "" {
				return mp, replyBadSyntax("bad SIZE value")
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				n = 1<<63 - 1 // more digits than fit: larger than any limit
			}
			mp.size = n
		case "BODY": // RFC 6152 §2: BODY=7BIT / BODY=8BITMIME
			switch strings.ToUpper(val) {
			case "7BIT":
				mp.eightBit = false
			case "8BITMIME":
				mp.eightBit = true
			default:
				return mp, replyBadSyntax("bad BODY value")
			}
		case "SMTPUTF8": // RFC 6531 §3.4: a keyword without a value
			if hasVal {
				return mp, replyBadSyntax("SMTPUTF8 takes no value")
			}
			mp.smtputf8 = true
		default:
			return mp, replyUnknownParam(kw)
		}
	}
	return mp, nil
}
