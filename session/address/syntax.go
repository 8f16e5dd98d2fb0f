package address

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// SyntaxError is a syntax error in a mailbox; its text is fit to be sent to
// the client in a reply.
type SyntaxError string

func (e SyntaxError) Error() string { return string(e) }

// Check validates Mailbox = Local-part "@" ( Domain / address-literal )
// (RFC 5321 §4.1.2), all ASCII. The error is a SyntaxError whose text may be
// sent to the client.
func Check(m string) error { return check(m, false) }

// CheckUTF8 validates a Mailbox as RFC 6531 §3.3 extends it for a
// transaction that declared SMTPUTF8: atext and qtextSMTP also take
// UTF8-non-ascii (valid UTF-8 only), and a sub-domain may be a U-label,
// accepted when the domain converts to an A-label form (IDNA Lookup profile)
// that Check would accept. Limits stay in octets (RFC 6531 §3.3).
func CheckUTF8(m string) error { return check(m, true) }

func check(m string, intl bool) error {
	at := strings.LastIndexByte(m, '@')
	if at < 0 {
		return SyntaxError("missing @domain")
	}
	local, domain := m[:at], m[at+1:]
	if intl && !utf8.ValidString(m) {
		return SyntaxError("invalid UTF-8 in address")
	}
	if err := checkLocalPart(local, intl); err != nil {
		return err
	}
	switch {
	case domain == "":
		return SyntaxError("empty domain")
	case domain[0] == '[':
		return checkAddressLiteral(domain)
	case intl && !IsASCII(domain):
		return checkUDomain(domain)
	}
	return CheckDomain(domain)
}

// checkUDomain validates a domain holding U-labels through its A-label form.
func checkUDomain(d string) error {
	if len(d) > MaxDomain {
		return SyntaxError("domain too long")
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || !IsASCII(a) {
		return SyntaxError("invalid internationalized domain")
	}
	return CheckDomain(a)
}

// checkLocalPart validates Local-part = Dot-string / Quoted-string; with
// intl, octets of UTF-8 sequences count as atext and qtext (RFC 6531 §3.3).
func checkLocalPart(l string, intl bool) error {
	switch {
	case l == "":
		return SyntaxError("empty local part")
	case len(l) > MaxLocalPart:
		return SyntaxError("local part too long")
	case l[0] == '"':
		return checkQuoted(l, intl)
	}
	for _, atom := range strings.Split(l, ".") {
		if atom == "" {
			return SyntaxError("empty atom in local part")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) && !(intl && atom[i] >= utf8.RuneSelf) {
				return SyntaxError("invalid character in local part")
			}
		}
	}
	return nil
}

// checkQuoted validates Quoted-string = DQUOTE *QcontentSMTP DQUOTE with
// qtextSMTP = %d32-33 / %d35-91 / %d93-126 (and UTF8-non-ascii with intl)
// and quoted-pairSMTP = "\" %d32-126.
func checkQuoted(q string, intl bool) error {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return SyntaxError("unterminated quoted local part")
	}
	in := q[1 : len(q)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) || in[i+1] < 32 || in[i+1] > 126 {
				return SyntaxError("bad quoted pair in local part")
			}
			i++
		case intl && c >= utf8.RuneSelf:
		case c == '"' || c < 32 || c > 126:
			return SyntaxError("invalid character in quoted local part")
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

// CheckDomain validates Domain = sub-domain *("." sub-domain), sub-domain =
// Let-dig [Ldh-str] (RFC 5321 §4.1.2), labels of at most 63 octets.
func CheckDomain(d string) error {
	if len(d) > MaxDomain {
		return SyntaxError("domain too long")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return SyntaxError("empty label in domain")
		}
		if len(label) > maxLabel {
			return SyntaxError("domain label too long")
		}
		if !isLetDig(label[0]) || !isLetDig(label[len(label)-1]) {
			return SyntaxError("domain label must start and end with a letter or digit")
		}
		for i := 1; i < len(label)-1; i++ {
			if !isLetDig(label[i]) && label[i] != '-' {
				return SyntaxError("invalid character in domain")
			}
		}
	}
	return nil
}

// checkAddressLiteral validates address-literal = "[" ( IPv4-address-literal /
// IPv6-address-literal / General-address-literal ) "]" (RFC 5321 §4.1.3).
func checkAddressLiteral(lit string) error {
	if len(lit) > MaxDomain {
		return SyntaxError("domain too long")
	}
	if len(lit) < 3 || lit[len(lit)-1] != ']' {
		return SyntaxError("bad address literal")
	}
	in := lit[1 : len(lit)-1]
	if tag, rest, ok := strings.Cut(in, ":"); ok {
		if strings.EqualFold(tag, "IPv6") {
			a, err := netip.ParseAddr(rest)
			if err != nil || !a.Is6() || a.Zone() != "" {
				return SyntaxError("bad IPv6 address literal")
			}
			return nil
		}
		// General-address-literal = Standardized-tag ":" 1*dcontent.
		if tag == "" || !isLetDig(tag[len(tag)-1]) || rest == "" {
			return SyntaxError("bad address literal")
		}
		for i := 0; i < len(tag); i++ {
			if !isLetDig(tag[i]) && tag[i] != '-' {
				return SyntaxError("bad address literal")
			}
		}
		// dcontent (%d33-90 / %d94-126) allows "<" and ">", but a path
		// holding them could not be written back inside <...> unambiguously
		// (logs, bounces, relaying): refused, as no registered tag uses them.
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' || c == '<' || c == '>' {
				return SyntaxError("bad address literal")
			}
		}
		return nil
	}
	a, err := netip.ParseAddr(in)
	if err != nil || !a.Is4() {
		return SyntaxError("bad IPv4 address literal")
	}
	return nil
}
