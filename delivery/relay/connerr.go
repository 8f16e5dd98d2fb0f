package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"gomta/session/reply"
)

// Enhanced codes for failures of the connection itself (RFC 3463 §3.5).
const (
	enhNoAnswer      = "4.4.1" // X.4.1 no answer from host: the connection was not taken
	enhBadConnection = "4.4.2" // X.4.2 bad connection: it was taken, then lost
)

// ConnError is a failure to talk to a mail exchanger at the network level
// (no SMTP reply to quote), made where the connection failed so that its
// text reads as an operator or a sender expects, the way Postfix writes it:
// "connect to mx.example[127.0.0.1]:2025: Connection refused". It is
// temporary; Enhanced is 4.4.1 when the connection was never made, 4.4.2
// when it was made and then lost.
type ConnError struct {
	Op       string // "connect to" or "lost connection with"
	Host     string // mail exchanger name
	Addr     string // "ip:port" (or "host:port" when it was never resolved)
	Reason   string // what went wrong, one short phrase
	Enhanced string
	Err      error // the underlying error, for errors.Is and the logs
}

func (e *ConnError) Error() string {
	host, port, err := net.SplitHostPort(e.Addr)
	if err != nil || host == e.Host {
		return e.Op + " " + e.Addr + ": " + e.Reason
	}
	return e.Op + " " + e.Host + "[" + host + "]:" + port + ": " + e.Reason
}

func (e *ConnError) Unwrap() error { return e.Err }

// Permanent is false: another attempt may find the host answering
// (reply.Temporary asks this).
func (e *ConnError) Permanent() bool { return false }

// netError turns what went wrong with target t into the error a recipient
// gets: an SMTP reply as it is; a stop as the context's error (not the
// closed connection it caused); a dial that failed as 4.4.1; anything else
// (the connection was made, then failed) as 4.4.2. remote is the address
// the connection reached, nil when none.
func netError(ctx context.Context, t Target, remote net.Addr, err error) error {
	var r *reply.Reply
	var op *net.OpError
	switch {
	case errors.As(err, &r):
		return err
	case ctx.Err() != nil:
		return ctxErr(ctx, err)
	case remote == nil && errors.As(err, &op) && op.Op == "dial":
		return connectError(t, err)
	default:
		return lostError(t, remote, err)
	}
}

// connectError describes a failed dial of target t.
func connectError(t Target, err error) *ConnError {
	return &ConnError{Op: "connect to", Host: t.Host, Addr: dialedAddr(t, err), Reason: reason(err),
		Enhanced: enhNoAnswer, Err: err}
}

// lostError describes a connection to target t that failed after it was
// made, without an SMTP reply (reset, timeout, TLS handshake, EOF).
func lostError(t Target, remote net.Addr, err error) *ConnError {
	addr := t.Addr
	if remote != nil {
		addr = remote.String()
	}
	return &ConnError{Op: "lost connection with", Host: t.Host, Addr: addr, Reason: reason(err),
		Enhanced: enhBadConnection, Err: err}
}

// dialedAddr is the address a failed dial tried: the resolved one when the
// error names it, else the target's.
func dialedAddr(t Target, err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	return t.Addr
}

// reason is the innermost cause of a network error as a short phrase with
// a capital, as the C library's strerror texts read in other MTAs' bounces.
func reason(err error) string {
	var errno syscall.Errno
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		return capitalize(errno.Error())
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "Host not found"
		}
		return "Host name lookup failed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "Connection timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Connection closed by the remote host"
	}
	// Keep the last element of an error chain ("a: b: c" → "c").
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return capitalize(s)
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
