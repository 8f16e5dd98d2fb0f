// Package smtp owns the server side of SMTP (RFC 5321): the per-connection state
// machine, the command parser, the DATA reader that accepts only CRLF.CRLF as the
// end of a message and counts the Received fields of its header as they stream
// by (mail loops, RFC 5321 §6.3), STARTTLS (RFC 3207) and implicit TLS (RFC 8314),
// AUTH PLAIN and LOGIN (RFC 4954, RFC 4616), the session limits, and the reply
// values.
// Policy (who may send what) and storage are asked through the small Backend
// interface, passwords through Config.Auth, connection and login limits through
// a shared *limit.Limiter; the accept loop and Shutdown are the shell of package
// session/serve. This package imports neither the queue nor delivery.
//
// Invariants: nothing read in plain text is acted on after STARTTLS; input
// pipelined after a command that must end a group (RFC 2920 §3.1: HELO, EHLO,
// NOOP, VRFY, EXPN, a refused DATA) is never run (554 5.5.0, close); AUTH
// payloads and passwords are never logged; every read and write has a deadline
// no later than the end of the session (Config.SessionTimeout). A message
// taken is logged once, "message accepted", after its Commit: msg_id, the
// client, sender, recipients as queued (QueuedRcpts), size, TLS, the AUTH
// user, the Message-ID and the previous hop's id (upstream_msg_id, from the
// first Received field as sent: a claim), the last two picked from the
// header section as it streams by, in bounded memory (traceScan).
//
// CHUNKING (RFC 3030): a message may come in BDAT chunks instead of DATA,
// read exactly by their size (no dot-stuffing, no end marker) and checked as
// DATA is (bare CR or LF, NUL, line length, size, Received count) across
// chunk boundaries; it streams into one MessageWriter (the draft) and is
// committed, and answered 250, only after the LAST chunk. The octets of a
// chunk are read whatever its reply, so that a session stays in step with a
// client that pipelined its chunks; a BDAT whose size cannot be read ends the
// session. BDAT and DATA do not mix in one transaction; RSET, HELO/EHLO, a
// refused chunk and the end of the session abort the draft.
//
// DSN (RFC 3461, dsnparams.go): RET and ENVID on MAIL, NOTIFY and ORCPT on
// RCPT are checked (501 5.5.4 for a bad value, 555 for one given twice)
// and handed, before Commit, to a MessageWriter that implements DSNWriter;
// the session does nothing else with them.
package smtp

import (
	"context"
	"io"
	"net"
)

// Peer describes the client at the other end of one session, as the backend
// needs to know it for policy decisions: where it connects from, what it
// said in HELO, whom it authenticated as, whether it is under TLS. It is
// owned by the session and read-only for the backend.
type Peer struct {
	Remote   net.Addr // client address
	Trusted  bool     // Remote is inside a trusted network (relay policy)
	Helo     string   // argument of the last HELO/EHLO
	AuthUser string   // authenticated account, "" when none
	TLS      bool     // connection is under TLS
}

// Backend is what a session needs from the rest of the MTA. Errors returned that
// are (or wrap) a *Reply are sent to the client as they are; any other error is
// logged and answered with a generic temporary failure (451 4.3.0).
type Backend interface {
	// Mail is asked at MAIL FROM. from is the reverse-path without brackets,
	// "" for the null sender.
	Mail(ctx context.Context, p *Peer, from string) error
	// Rcpt is asked at each RCPT TO for the current transaction.
	Rcpt(ctx context.Context, p *Peer, from, rcpt string) error
	// NewMessage opens a sink for a message body after DATA was accepted.
	NewMessage(ctx context.Context, p *Peer) (MessageWriter, error)
}

// MessageWriter receives one message body as it streams in (already
// dot-unstuffed, CRLF line endings, the Received header first).
type MessageWriter interface {
	io.Writer
	// ID is the msg_id assigned at acceptance (used in the Received header and logs).
	ID() string
	// Commit makes the message and its envelope durable and hands it to delivery.
	// It returns only when the message is on stable storage: 250 follows.
	Commit(ctx context.Context, from string, rcpts []string) error
	// Abort throws the partial message away (size exceeded, client gone, ...).
	Abort()
}

// TraceWriter may be implemented by a MessageWriter that puts the final
// delivery's trace fields before the Received field when the envelope
// allows it (mta: the message's only recipient is a local account, whose
// Maildir then links the spool file instead of copying it). The session
// calls WriteTrace once, with the transaction's sender and recipients,
// before any other octet; it returns the octets written (part of the size
// logged) and an error that fails the message as a write error does.
type TraceWriter interface {
	WriteTrace(from string, rcpts []string) (int, error)
}

// writeTrace lets mw write its trace fields, if it writes any.
func writeTrace(mw MessageWriter, from string, rcpts []string) (int, error) {
	if t, ok := mw.(TraceWriter); ok {
		return t.WriteTrace(from, rcpts)
	}
	return 0, nil
}

// QueuedRcpts may be implemented by a MessageWriter whose Commit queues the
// recipients in another form than given (canonical, each once): after a
// Commit that returned nil, the acceptance line logs them as queued.
type QueuedRcpts interface {
	QueuedRcpts() []string
}
