package pop3client

import "strings"

// Caps is a parsed CAPA listing (RFC 2449 §5): capability name, upper-cased,
// to its arguments.
type Caps map[string][]string

// ParseCaps parses the lines returned by Capa.
func ParseCaps(lines []string) Caps {
	caps := make(Caps, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		caps[strings.ToUpper(f[0])] = f[1:]
	}
	return caps
}

// Has reports whether the capability name (case-insensitive) is listed.
func (c Caps) Has(name string) bool {
	_, ok := c[strings.ToUpper(name)]
	return ok
}

// SASL reports whether the SASL capability lists mech (case-insensitive).
func (c Caps) SASL(mech string) bool {
	for _, m := range c["SASL"] {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}
