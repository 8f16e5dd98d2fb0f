// Package pop3 owns the server side of POP3 (RFC 1939, RFC 2449 extensions): the
// per-connection AUTHORIZATION / TRANSACTION / UPDATE state machine, the command
// parser and the +OK/-ERR reply values, STLS (RFC 2595) and implicit TLS (RFC
// 8314), AUTH PLAIN (RFC 5034), UTF8 and UTF-8 user names (RFC 6856). Accounts and mailboxes are reached only through
// the Backend interface (wired by package mta to the mailbox actors); the accept
// loop, the connection limiter and Shutdown are the shell of package
// session/serve.
//
// Invariants: a message is removed only in UPDATE, after QUIT (RFC 1939 §6);
// a session that ends any other way closes its maildrop with nothing removed;
// plaintext pipelined after STLS is never run; passwords and AUTH payloads are
// never logged; every command read has a deadline (Config.IdleTimeout).
// After login every line names the user; a message retrieved (RETR, TOP),
// marked deleted (DELE) or deleted (at QUIT, once removed) is logged with
// its msg_id (MsgInfo.MsgID), so that a message can be followed from its
// acceptance to its reader.
package pop3

import (
	"context"
	"errors"
	"io"
)

// Errors a Backend returns; the session maps them to RFC 2449 response codes.
var (
	ErrAuth  = errors.New("pop3: invalid user name or password") // -ERR [AUTH]
	ErrInUse = errors.New("pop3: mailbox in use")                // -ERR [IN-USE]
)

// MsgInfo is one message of a maildrop as listed at login.
type MsgInfo struct {
	Size int64  // exact octets as sent over POP3 (CRLF line endings, before dot-stuffing)
	UID  string // unique id for UIDL (RFC 1939 §7), stable across sessions
	// MsgID is the msg_id the message was accepted under, for the log
	// lines of its retrieval and deletion; "" when unknown.
	MsgID string
}

// Backend authenticates users and opens their maildrop.
type Backend interface {
	// Login checks a user's password; ErrAuth when wrong or unknown.
	Login(ctx context.Context, user, pass string) error
	// Open locks the user's maildrop for this session; ErrInUse when another
	// session holds it.
	Open(ctx context.Context, user string) (Maildrop, error)
}

// Maildrop is a locked mailbox seen by one POP3 session. Its listing is fixed
// for the session (message n is List()[n-1]).
type Maildrop interface {
	List() []MsgInfo
	// Open returns the content of message i (0-based index into List()).
	Open(ctx context.Context, i int) (io.ReadCloser, error)
	// Commit removes the messages at the given 0-based indexes (UPDATE state),
	// durably, and releases the lock.
	Commit(ctx context.Context, deleted []int) error
	// Close releases the lock without removing anything (dropped connection).
	Close()
}
