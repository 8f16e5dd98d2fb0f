package smtp

import (
	"strings"

	"gomta/session/reply"
)

// The DSN extension (RFC 3461): MAIL FROM takes RET= and ENVID=, RCPT TO
// takes NOTIFY= and ORCPT=. Their values are checked here and kept with the
// transaction (dsnTx); at Commit they go to a MessageWriter that implements
// DSNWriter, which stores them with the envelope.

// Limits of RFC 3461: ENVID at most 100 characters (§4.4), ORCPT at most
// 500 (§4.2), both counted in their xtext form.
const (
	maxEnvID = 100
	maxORCPT = 500
)

// DSN is what a client asked of delivery status notifications for one
// transaction (RFC 3461). Values are as checked: RET upper-cased, ENVID
// and ORCPT still xtext-encoded (decoded only where they are shown).
type DSN struct {
	Ret   string             // "FULL", "HDRS" or "" (not given)
	EnvID string             // ENVID, xtext; "" when not given
	Rcpts map[string]RcptDSN // by recipient as given at RCPT TO; only those with parameters
}

// RcptDSN is the DSN parameters of one recipient.
type RcptDSN struct {
	Notify string // "NEVER", or a comma-separated subset of SUCCESS,FAILURE,DELAY (upper case); "" when not given
	ORCPT  string // "addr-type;xtext" as given (addr-type as sent); "" when not given
}

// DSNWriter may be implemented by a MessageWriter that stores DSN
// parameters: SetDSN is called once, before Commit, when the transaction
// had any.
type DSNWriter interface {
	SetDSN(DSN)
}

// dsnTx is the DSN state of the current transaction.
type dsnTx struct {
	ret, envID string
	rcpts      map[string]RcptDSN
}

// empty reports whether the transaction has no DSN parameter.
func (t *dsnTx) empty() bool { return t.ret == "" && t.envID == "" && len(t.rcpts) == 0 }

// handOver gives the transaction's DSN parameters to mw when it takes them.
func (t *dsnTx) handOver(mw MessageWriter) {
	if w, ok := mw.(DSNWriter); ok && !t.empty() {
		w.SetDSN(DSN{Ret: t.ret, EnvID: t.envID, Rcpts: t.rcpts})
	}
}

// mailDSN checks a MAIL FROM parameter of the DSN extension. It reports
// whether kw is one (RET, ENVID), and the reply for a bad value.
func mailDSN(kw, val string, hasVal bool, ret, envID *string) (bool, *Reply) {
	switch kw {
	case "RET": // RFC 3461 §4.3: RET=FULL / RET=HDRS
		if *ret != "" {
			return true, replyParamTwice(kw)
		}
		v := strings.ToUpper(val)
		if v != "FULL" && v != "HDRS" {
			return true, replyBadSyntax("RET must be FULL or HDRS")
		}
		*ret = v
	case "ENVID": // RFC 3461 §4.4: ENVID=xtext, at most 100 characters
		if *envID != "" {
			return true, replyParamTwice(kw)
		}
		if !hasVal || val == "" || len(val) > maxEnvID || !isXtext(val) {
			return true, replyBadSyntax("ENVID must be xtext of 1 to 100 characters")
		}
		*envID = val
	default:
		return false, nil
	}
	return true, nil
}

// parseRcptParams parses the RCPT TO parameters: NOTIFY and ORCPT (RFC
// 3461 §4.1, §4.2). An unknown keyword gets 555, a repeated one 555, a bad
// value 501 5.5.4.
func parseRcptParams(params []string) (RcptDSN, *Reply) {
	var rd RcptDSN
	for _, p := range params {
		kw, val, _ := strings.Cut(p, "=")
		kw = strings.ToUpper(kw)
		switch kw {
		case "NOTIFY":
			if rd.Notify != "" {
				return rd, replyParamTwice(kw)
			}
			n, ok := parseNotify(val)
			if !ok {
				return rd, replyBadSyntax("NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
			}
			rd.Notify = n
		case "ORCPT":
			if rd.ORCPT != "" {
				return rd, replyParamTwice(kw)
			}
			if !validORCPT(val) {
				return rd, replyBadSyntax("ORCPT must be addr-type;xtext of at most 500 characters")
			}
			rd.ORCPT = val
		default:
			return rd, replyUnknownParam(kw)
		}
	}
	return rd, nil
}

// notifyKeywords are the values of NOTIFY other than NEVER, in the order
// they are stored.
var notifyKeywords = []string{"SUCCESS", "FAILURE", "DELAY"}

// parseNotify checks NOTIFY's value (RFC 3461 §4.1: "NEVER" alone, or a
// non-empty list of SUCCESS, FAILURE, DELAY, each at most once) and returns
// it upper-cased in a fixed order.
func parseNotify(v string) (string, bool) {
	v = strings.ToUpper(v)
	if v == "NEVER" {
		return v, true
	}
	seen := map[string]bool{}
	for _, k := range strings.Split(v, ",") {
		if seen[k] || (k != "SUCCESS" && k != "FAILURE" && k != "DELAY") {
			return "", false
		}
		seen[k] = true
	}
	var out []string
	for _, k := range notifyKeywords {
		if seen[k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, ","), true
}

// validORCPT checks ORCPT's value: addr-type ";" xtext (RFC 3461 §4.2),
// addr-type an atom (RFC 5322 atext), at most 500 characters.
func validORCPT(v string) bool {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || len(v) > maxORCPT || typ == "" || addr == "" || !isXtext(addr) {
		return false
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,."`, c) >= 0 {
			return false
		}
	}
	return true
}

// isXtext checks RFC 3461 §4 xtext: printable ASCII other than "+" and
// "=", and "+" followed by two upper-case hex digits.
func isXtext(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return false
			}
			i += 2
		case c < '!' || c > '~' || c == '=':
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// replyParamTwice is for a DSN parameter given twice in one command (RFC
// 5321 §4.1.1.11: parameters not accepted; RFC 3461 §4: each at most once).
func replyParamTwice(keyword string) *Reply {
	return &Reply{Code: reply.CodeBadParams, Enhanced: reply.EnhBadArgs, Text: "parameter given twice: " + keyword}
}
