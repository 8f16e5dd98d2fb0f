package mailbox

import (
	"strings"

	"gomta/session/address"
)

// TraceFields is the trace fields local delivery writes for a message from
// from to the account user (traceHeaders), and the account as the Store
// names its mailbox. A queue that writes them as a body's first octets and
// gives their length and account with the Delivery (TraceLen, TraceTo)
// has the body hard-linked into that mailbox instead of copied.
func TraceFields(from, user string) (fields []byte, account string) {
	account = address.Account(user)
	return traceHeaders(from, account), account
}

// traceHeaders is what local delivery prepends to every message it stores,
// as Postfix's local(8) does:
//
//	Return-Path: <sender>     RFC 5321 §4.4: the final delivery MTA records
//	                          the reverse-path; "<>" for the null sender, so
//	                          that readers and filters see a bounce as one.
//	Delivered-To: rcpt        the mailbox's (folded) address, unbracketed as
//	                          Postfix writes it.
//
// A Return-Path the message already carries is left alone (Postfix does not
// strip it either): ours comes first, and readers take the first.
func traceHeaders(from, rcpt string) []byte {
	b := make([]byte, 0, len("Return-Path: <>\r\nDelivered-To: \r\n")+len(from)+len(rcpt))
	b = append(b, "Return-Path: <"...)
	b = append(b, headerSafe(from)...)
	b = append(b, ">\r\nDelivered-To: "...)
	b = append(b, headerSafe(rcpt)...)
	return append(b, "\r\n"...)
}

// headerSafe drops control characters, so that an address can never end the
// header line or start another. SMTP's command parser refuses them already;
// this keeps a mailbox file well-formed whatever the queue hands over.
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, isCtl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isCtl(r) {
			return -1
		}
		return r
	}, s)
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// TraceHeaders returns the Return-Path and Delivered-To lines local delivery
// prepends (traceHeaders), so that a mailbox kept elsewhere (jsbox) stores
// the same octets as a Maildir.
func TraceHeaders(from, rcpt string) []byte { return traceHeaders(from, rcpt) }
