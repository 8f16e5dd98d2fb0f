// Package address owns what gomta knows about an email address: the RFC 5321
// Mailbox grammar (Check, CheckDomain), its split into local part and domain
// (Split, Domain), its canonical forms (FoldDomain and Canonical for any
// address, Account for this host's accounts) and the postmaster (IsPostmaster).
// The SMTP session's path parser, the relay policy, the delivery worker's
// split by domain, the relay and the mailbox store's account keys all call it,
// so that internationalised addresses (SMTPUTF8, IDNA) change one place.
//
// Invariants: the package imports nothing of gomta's; addresses are ASCII
// (SMTPUTF8 is not offered); the domain is the part after the last '@' and is
// compared only in its folded form; a local part keeps its case except in
// Account, because only the host that owns a mailbox may fold it (RFC 5321
// §2.4).
package address

import (
	"strings"
	"unicode/utf8"
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
// case-insensitive (RFC 5321 §2.4, RFC 1035 §2.3.3).
func FoldDomain(d string) string { return strings.ToLower(d) }

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
// logins counted. An address that is not valid UTF-8 is returned unchanged:
// folding would hide its bad octets behind U+FFFD, and two distinct invalid
// names could then meet.
func Account(addr string) string {
	if !utf8.ValidString(addr) {
		return addr
	}
	return strings.ToLower(addr)
}

// IsPostmaster reports whether addr is <Postmaster> or postmaster@ some
// domain, in any case (RFC 5321 §4.5.1, §2.4: the local part "Postmaster" is
// case-insensitive).
func IsPostmaster(addr string) bool {
	local, _, _ := Split(addr)
	return strings.EqualFold(local, Postmaster)
}
