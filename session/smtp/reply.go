package smtp

import (
	"strconv"
	"strings"
)

// Reply is one SMTP reply (RFC 5321 §4.2): a three-digit code, an enhanced
// status code (RFC 3463, "" when the reply has none) and text, one element per
// line. A Reply is also an error, so that backends and the client package can
// return one; Temporary tells 4xx from 5xx.
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
