package smtp

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on addresses (RFC 5321 §4.5.3.1.1 – §4.5.3.1.3).
const (
	maxLocalPart = 64  // RFC 5321 §4.5.3.1.1
	maxDomain    = 255 // RFC 5321 §4.5.3.1.2
	maxPath      = 256 // RFC 5321 §4.5.3.1.3, including the angle brackets
	maxLabel     = 63  // RFC 1035 §2.3.4
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
// wrong; errors from the address itself are *addrError.
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
	if end+1 > maxPath {
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

// addrError is a syntax error in a mailbox; its text is sent to the client.
type addrError string

func (e addrError) Error() string { return string(e) }

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
			return "", addrError("source route without ':'")
		}
		for _, hop := range strings.Split(route, ",") {
			if len(hop) < 2 || hop[0] != '@' || checkDomain(hop[1:]) != nil {
				return "", addrError("bad source route")
			}
		}
		p = mbox
	}
	if err := checkMailbox(p); err != nil {
		return "", err
	}
	return p, nil
}

// checkMailbox validates Mailbox = Local-part "@" ( Domain / address-literal )
// (RFC 5321 §4.1.2). Addresses are ASCII: SMTPUTF8 is not offered.
func checkMailbox(m string) error {
	at := strings.LastIndexByte(m, '@')
	if at < 0 {
		return addrError("missing @domain")
	}
	local, domain := m[:at], m[at+1:]
	if err := checkLocalPart(local); err != nil {
		return err
	}
	if domain == "" {
		return addrError("empty domain")
	}
	if domain[0] == '[' {
		return checkAddressLiteral(domain)
	}
	return checkDomain(domain)
}

// checkLocalPart validates Local-part = Dot-string / Quoted-string.
func checkLocalPart(l string) error {
	switch {
	case l == "":
		return addrError("empty local part")
	case len(l) > maxLocalPart:
		return addrError("local part too long")
	case l[0] == '"':
		return checkQuoted(l)
	}
	for _, atom := range strings.Split(l, ".") {
		if atom == "" {
			return addrError("empty atom in local part")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return addrError("invalid character in local part")
			}
		}
	}
	return nil
}

// checkQuoted validates Quoted-string = DQUOTE *QcontentSMTP DQUOTE with
// qtextSMTP = %d32-33 / %d35-91 / %d93-126 and quoted-pairSMTP = "\" %d32-126.
func checkQuoted(q string) error {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return addrError("unterminated quoted local part")
	}
	in := q[1 : len(q)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) || in[i+1] < 32 || in[i+1] > 126 {
				return addrError("bad quoted pair in local part")
			}
			i++
		case c == '"' || c < 32 || c > 126:
			return addrError("invalid character in quoted local part")
		}
	}
	return nil
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isLetDig(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkDomain validates Domain = sub-domain *("." sub-domain), sub-domain =
// Let-dig [Ldh-str] (RFC 5321 §4.1.2), labels of at most 63 octets.
func checkDomain(d string) error {
	if len(d) > maxDomain {
		return addrError("domain too long")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return addrError("empty label in domain")
		}
		if len(label) > maxLabel {
			return addrError("domain label too long")
		}
		if !isLetDig(label[0]) || !isLetDig(label[len(label)-1]) {
			return addrError("domain label must start and end with a letter or digit")
		}
		for i := 1; i < len(label)-1; i++ {
			if !isLetDig(label[i]) && label[i] != '-' {
				return addrError("invalid character in domain")
			}
		}
	}
	return nil
}

// checkAddressLiteral validates address-literal = "[" ( IPv4-address-literal /
// IPv6-address-literal / General-address-literal ) "]" (RFC 5321 §4.1.3).
func checkAddressLiteral(lit string) error {
	if len(lit) > maxDomain {
		return addrError("domain too long")
	}
	if len(lit) < 3 || lit[len(lit)-1] != ']' {
		return addrError("bad address literal")
	}
	in := lit[1 : len(lit)-1]
	if tag, rest, ok := strings.Cut(in, ":"); ok {
		if strings.EqualFold(tag, "IPv6") {
			a, err := netip.ParseAddr(rest)
			if err != nil || !a.Is6() || a.Zone() != "" {
				return addrError("bad IPv6 address literal")
			}
			return nil
		}
		// General-address-literal = Standardized-tag ":" 1*dcontent.
		if tag == "" || !isLetDig(tag[len(tag)-1]) || rest == "" {
			return addrError("bad address literal")
		}
		for i := 0; i < len(tag); i++ {
			if !isLetDig(tag[i]) && tag[i] != '-' {
				return addrError("bad address literal")
			}
		}
		// dcontent (%d33-90 / %d94-126) allows "<" and ">", but a path
		// holding them could not be written back inside <...> unambiguously
		// (logs, bounces, relaying): refused, as no registered tag uses them.
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' || c == '<' || c == '>' {
				return addrError("bad address literal")
			}
		}
		return nil
	}
	a, err := netip.ParseAddr(in)
	if err != nil || !a.Is4() {
		return addrError("bad IPv4 address literal")
	}
	return nil
}

// mailParams holds the MAIL FROM parameters this server offers.
type mailParams struct {
	size     int64 // SIZE= (RFC 1870), 0 when absent
	eightBit bool  // BODY=8BITMIME (RFC 6152)
}

// parseMailParams parses the MAIL FROM parameters. An unknown keyword returns
// a 555 reply (RFC 5321 §4.1.1.11); a bad value or a repeated keyword a 501.
func parseMailParams(params []string) (mailParams, *Reply) {
	var mp mailParams
	seen := map[string]bool{}
	for _, p := range params {
		kw, val, hasVal := strings.Cut(p, "=")
		kw = strings.ToUpper(kw)
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
		default:
			return mp, replyUnknownParam(kw)
		}
	}
	return mp, nil
}
