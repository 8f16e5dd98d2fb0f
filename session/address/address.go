// Package address owns what gomta knows about an email address: the RFC 5321
// Mailbox grammar (Check, CheckDomain), its split into local part and domain
// (Split, Domain), its canonical forms (FoldDomain and Canonical for any
// address, Account for this host's accounts) and the postmaster (IsPostmaster).
// The SMTP session's path parser, the relay policy, the delivery worker's
// split by domain, the relay and the mailbox store's account keys all call it,
// so that internationalised addresses (SMTPUTF8, IDNA) change one place.
//
// Invariants: the package imports nothing of gomta's; an address is ASCII
// (Check) unless the transaction declared SMTPUTF8 (CheckUTF8, RFC 6531
// §3.3); the domain is the part after the last '@' and is compared only in
// its folded form, which is its IDNA A-label form (RFC 5890), so that a
// U-label and its A-label name the same domain; a local part keeps its case
// except in Account, because only the host that owns a mailbox may fold it
// (RFC 5321 §2.4).
package address

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Limits on addresses (RFC 5321 §4.5.3.1.1 – §4.5.3.1.3).
const (
	MaxLocalPart = 64  // RFC 5321 §4.5.3.1.1
	MaxDomain    = 255 // RFC 5321 §4.5.3.1.2
	MaxPath      = 256 // RFC 5321 §4.5.3.1.3, including the angle brackets
	maxLabel     = 63  // RFC 1035 §2.3.4
)

// Postmaster is the local part that RFC 5321 §4.5.1 reserves: <Postmaster>
// (any case, no domain) and postmaster@ each local domain must be accepted.
const Postmaster = "postmaster"

// Split cuts addr at its last '@' into the local part and the domain, as
// they were written; ok is false when addr has no '@' (only <Postmaster>
// gets that far).
func Split(addr string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, "", false
	}
	return addr[:at], addr[at+1:], true
}

// Domain is the folded domain of addr, "" when it has none.
func Domain(addr string) string {
	_, d, _ := Split(addr)
	return FoldDomain(d)
}

// FoldDomain is the one form in which domains are compared: domain names are
// case-insensitive (RFC 5321 §2.4, RFC 1035 §2.3.3), and a domain with
// U-labels is compared in its A-label form (RFC 5890 §2.3.2.1), converted
// with IDNA's Lookup profile (UTS #46 mapping, RFC 5891 §5). A non-ASCII
// domain that does not convert is returned unchanged: Check refuses it
// anyway, and a guess at folding it could make two distinct names meet.
func FoldDomain(d string) string {
	if IsASCII(d) {
		return strings.ToLower(d)
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || !IsASCII(a) {
		return d
	}
	return strings.ToLower(a)
}

// IsASCII reports whether s is all US-ASCII: an address that is not needs
// SMTPUTF8 (RFC 6531 §3.2).
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Canonical is addr with its domain folded and its local part as given: the
// form of an address that belongs to another host (RFC 5321 §2.4: the local
// part is the business of the host that owns the mailbox).
func Canonical(addr string) string {
	local, d, ok := Split(addr)
	if !ok {
		return addr
	}
	return local + "@" + FoldDomain(d)
}

// Account is the one folding of this host's account names, local part
// included, under which accounts and mailboxes are looked up and failed
// logins counted: the local part lower-cased (strings.ToLower, which for a
// UTF-8 local part is Unicode's simple lower-casing) and then put in NFC, so
// that the composed and decomposed spellings of one name meet (RFC 6530
// and RFC 6532 recommend NFC); the domain folded as FoldDomain
// does. An address that is not valid UTF-8 is returned unchanged: folding
// would hide its bad octets behind U+FFFD, and two distinct invalid names
// could then meet.
func Account(addr string) string {
	if !utf8.ValidString(addr) {
		return addr
	}
	local, d, ok := Split(addr)
	local = foldLocal(local)
	if !ok {
		return local
	}
	return local + "@" + FoldDomain(d)
}

// foldLocal lower-cases and normalises a local part until it is stable:
// lower-casing a composed letter can leave a string that NFC composes
// again, so one round of each is not always a fixed point.
func foldLocal(l string) string {
	if IsASCII(l) {
		return strings.ToLower(l)
	}
	for range 4 {
		f := norm.NFC.String(strings.ToLower(l))
		if f == l {
			break
		}
		l = f
	}
	return l
}

// IsPostmaster reports whether addr is <Postmaster> or postmaster@ some
// domain, in any case (RFC 5321 §4.5.1, §2.4: the local part "Postmaster" is
// case-insensitive).
func IsPostmaster(addr string) bool {
	local, _, _ := Split(addr)
	return strings.EqualFold(local, Postmaster)
}
