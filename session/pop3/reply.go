package pop3

import (
	"fmt"
	"strings"
)

// Reply is one POP3 status line (RFC 1939 §3): "+OK" or "-ERR", an optional
// RFC 2449 §8 response code in brackets, and human-readable text. Multi-line
// bodies are not part of a Reply; the session streams them after a positive
// Reply. A Reply is also an error, so a Backend may return one to choose the
// exact -ERR line (return the value, not a pointer).
type Reply struct {
	OK   bool
	Code RespCode // "" when the reply carries no response code
	Text string
}

// RespCode is an RFC 2449 §8 extended response code, rendered as "[CODE]".
type RespCode string

// Response codes gomta sends. CAPA announces RESP-CODES and AUTH-RESP-CODE.
const (
	CodeInUse   RespCode = "IN-USE"   // RFC 2449 §8.1.2: maildrop locked by another session
	CodeAuth    RespCode = "AUTH"     // RFC 3206 §5: the credentials were wrong
	CodeSysTemp RespCode = "SYS/TEMP" // RFC 3206 §4: transient system problem, try later
	CodeSysPerm RespCode = "SYS/PERM" // RFC 3206 §4: permanent system problem
)

// String renders the status line without its CRLF.
func (r Reply) String() string {
	var b strings.Builder
	if r.OK {
		b.WriteString("+OK")
	} else {
		b.WriteString("-ERR")
	}
	if r.Code != "" {
		b.WriteString(" [")
		b.WriteString(string(r.Code))
		b.WriteByte(']')
	}
	if r.Text != "" {
		b.WriteByte(' ')
		b.WriteString(r.Text)
	}
	return b.String()
}

// Error is the status line, so a Reply can travel as an error.
func (r Reply) Error() string { return r.String() }

func ok(format string, a ...any) Reply { return Reply{OK: true, Text: fmt.Sprintf(format, a...)} }

func errReply(format string, a ...any) Reply { return Reply{Text: fmt.Sprintf(format, a...)} }

// Fixed replies, named once. Wording follows the examples of RFC 1939 where
// it has them.
var (
	replyOK            = Reply{OK: true}                                                // NOOP, RFC 1939 §5
	replySendPass      = Reply{OK: true, Text: "send PASS"}                             // USER, RFC 1939 §7: same for every name
	replyCapa          = Reply{OK: true, Text: "capability list follows"}               // CAPA, RFC 2449 §5
	replyUTF8          = Reply{OK: true, Text: "UTF8 enabled"}                          // UTF8, RFC 6856 §3
	replyBadUTF8       = Reply{Text: "user name is not valid UTF-8"}                    // USER after UTF8, RFC 6856 §3
	replyTop           = Reply{OK: true, Text: "top of message follows"}                // TOP, RFC 1939 §7
	replyUidl          = Reply{OK: true, Text: "unique-id listing follows"}             // UIDL, RFC 1939 §7
	replyUnknown       = Reply{Text: "unknown command"}                                 // RFC 1939 §3
	replyLineTooLong   = Reply{Text: "line too long"}                                   // RFC 2449 §4: 255 octets with CRLF
	replyBadSyntax     = Reply{Text: "invalid characters in command"}                   // RFC 2449 §4: printable ASCII
	replyTooManyErrors = Reply{Text: "too many errors"}                                 // then close
	replyShutdown      = Reply{Code: CodeSysTemp, Text: "server shutting down"}         // RFC 3206 §4
	replyIdle          = Reply{Code: CodeSysTemp, Text: "idle timeout, closing"}        // RFC 1939 §3 autologout
	replyInternal      = Reply{Code: CodeSysTemp, Text: "internal error"}               // recovered panic
	replyTempFail      = Reply{Code: CodeSysTemp, Text: "temporary failure, try later"} // backend error
	replyAuthFailed    = Reply{Code: CodeAuth, Text: "invalid user name or password"}   // RFC 3206 §5: unknown user and wrong password alike
	replyInUse         = Reply{Code: CodeInUse, Text: "mailbox already locked"}         // RFC 2449 §8.1.2
	replyCommitFailed  = Reply{Code: CodeSysTemp, Text: "could not remove deleted messages, none removed"}
	replyUserFirst     = Reply{Text: "USER first"}             // PASS without USER, RFC 1939 §7
	replyNotLoggedIn   = Reply{Text: "not logged in"}          // TRANSACTION command in AUTHORIZATION
	replyLoggedIn      = Reply{Text: "already logged in"}      // AUTHORIZATION command in TRANSACTION
	replyMissingUser   = Reply{Text: "missing user name"}      // USER without argument
	replyMissingPass   = Reply{Text: "missing password"}       // PASS without argument
	replyMissingMsg    = Reply{Text: "missing message number"} // RETR/DELE/TOP without argument
	replyBadMsg        = Reply{Text: "invalid message number"} // not a positive decimal
	replyMissingLines  = Reply{Text: "missing line count"}     // TOP n without m
	replyBadLines      = Reply{Text: "invalid line count"}     // TOP n m with bad m
	replyTooManyArgs   = Reply{Text: "too many arguments"}     // RFC 1939 §3: fixed arity
	replyNoSuchMsg     = Reply{Text: "no such message"}        // RFC 1939 §5 LIST example

	replyBeginTLS      = Reply{OK: true, Text: "Begin TLS negotiation"}                                     // RFC 2595 §4 example
	replyTLSActive     = Reply{Text: "TLS already active"}                                                  // STLS twice, RFC 2595 §4
	replyNeedTLS       = Reply{Code: CodeAuth, Text: "plaintext authentication disallowed, use STLS first"} // RFC 2595 §2
	replyMissingMech   = Reply{Text: "missing authentication mechanism"}                                    // AUTH without argument, RFC 5034 §4
	replyUnknownMech   = Reply{Text: "unsupported authentication mechanism"}                                // RFC 5034 §4
	replyAuthCancelled = Reply{Text: "authentication cancelled"}                                            // "*", RFC 5034 §4
	replyBadBase64     = Reply{Text: "invalid base64 in authentication response"}                           // RFC 5034 §4
	replyBadPlain      = Reply{Text: "malformed PLAIN response"}                                            // RFC 4616 §2
	replyAuthzID       = Reply{Code: CodeAuth, Text: "authorization identity must be empty or the user"}    // RFC 4616 §2: no proxy logins
	replyLockedOut     = Reply{Code: CodeAuth, Text: "too many failed logins, try later"}                   // limit.Limiter lock-out, then close
	replyTooManyConns  = Reply{Code: CodeSysTemp, Text: "too many connections"}                             // limit.Limiter refusal, then close
)

// Replies with numbers in them.
func replyGreeting(host string) Reply { return ok("%s POP3 server ready", host) }
func replyMaildrop(n int, size int64) Reply {
	return ok("maildrop has %d messages (%d octets)", n, size) // RFC 1939 §7 PASS example
}
func replyStat(n int, size int64) Reply   { return ok("%d %d", n, size) }   // RFC 1939 §5 drop listing
func replyScan(num int, size int64) Reply { return ok("%d %d", num, size) } // RFC 1939 §5 scan listing
func replyUID(num int, uid string) Reply  { return ok("%d %s", num, uid) }  // RFC 1939 §7 unique-id listing
func replyRetr(size int64) Reply          { return ok("%d octets", size) }  // RFC 1939 §5 RETR example
func replyDeleted(num int) Reply          { return ok("message %d deleted", num) }
func replyAlreadyDeleted(num int) Reply   { return errReply("message %d already deleted", num) } // RFC 1939 §5 DELE example
func replyList(n int, size int64) Reply   { return ok("%d messages (%d octets)", n, size) }      // RFC 1939 §5 LIST example
func replyBye(host string) Reply          { return ok("%s signing off", host) }                  // QUIT in AUTHORIZATION
func replyByeLeft(host string, left int) Reply {
	return ok("%s signing off (%d messages left)", host, left) // RFC 1939 §6 QUIT example
}
