// Package reply owns the SMTP reply as a value: a three-digit code, an
// enhanced status code and text (RFC 5321 §4.2, RFC 3463), which is also an
// error. The SMTP server (session/smtp), the SMTP client (session/smtpclient),
// the relay and the delivery worker all speak it, so that a remote refusal, a
// local policy decision and a client-side check travel as the same type, and
// every reply code and enhanced status code is named here once, with its RFC.
//
// Invariants: the package imports nothing of gomta's; a reply's class is the
// first digit of its code (2 success, 3 intermediate, 4 transient, 5
// permanent); whether a delivery error is worth another try is decided by
// Temporary alone.
package reply

import (
	"errors"
	"strconv"
	"strings"
)

// Reply is one SMTP reply (RFC 5321 §4.2): a three-digit code, an enhanced
// status code (RFC 3463, "" when the reply has none) and text, one element per
// line. A Reply is also an error, so that backends, the client and the relay
// can return one; Temporary tells 4xx from 5xx.
type Reply struct {
	Code     int
	Enhanced string
	Text     string // lines separated by "\n"
}

// Error renders the reply on one line, for logs and error chains.
func (r *Reply) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(r.Enhanced)
	}
	if r.Text != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(r.Text, "\n", " / "))
	}
	return b.String()
}

// Temporary reports whether the reply is a transient negative one (4yz).
func (r *Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports whether the reply is a permanent negative one (5yz).
func (r *Reply) Permanent() bool { return r.Code >= 500 }

// Temporary classifies the result of a delivery attempt: nil is no failure
// (false); otherwise the first error in err's chain that has a Permanent
// method (a *Reply, whose 5yz codes are permanent, or a local error that
// knows, such as a resolution miss) decides; anything else (network errors,
// timeouts, a full disk, a shutdown) is temporary, and the retry schedule
// ends it.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		return !p.Permanent()
	}
	return true
}
