package relay

import (
	"strings"

	"gomta/session/smtpclient"
)

// DSN is the sender's delivery status notification parameters (RFC 3461)
// for one message, passed on to a next hop that offers DSN, which then
// notifies the sender itself. Values are as the SMTP session checked them:
// Ret "FULL", "HDRS" or "", EnvID and ORCPT xtext.
type DSN struct {
	Ret   string
	EnvID string
	Rcpt  map[string]RcptDSN // by recipient as queued
}

// RcptDSN is one recipient's NOTIFY and ORCPT ("" when not given).
type RcptDSN struct {
	Notify string
	ORCPT  string
}

// withDSN adds j's DSN parameters to env when c's server offers DSN (RFC
// 3461 §4: only then may they be sent): RET and ENVID on MAIL, NOTIFY and
// ORCPT on each RCPT. A recipient without ORCPT gets ORCPT=rfc822;<itself>
// (RFC 3461 §4.2: a relaying MTA SHOULD supply it, so that the next hop's
// reports name the address the sender gave us). env.Rcpts is j.Rcpts.
func withDSN(c *smtpclient.Client, j Job, env smtpclient.Envelope) smtpclient.Envelope {
	if ok, _ := c.Extension("DSN"); !ok {
		return env
	}
	if j.DSN.Ret != "" {
		env.MailParams = append(env.MailParams, "RET="+j.DSN.Ret)
	}
	if j.DSN.EnvID != "" {
		env.MailParams = append(env.MailParams, "ENVID="+j.DSN.EnvID)
	}
	params := make([][]string, len(env.Rcpts))
	for i, rcpt := range env.Rcpts {
		if i < len(env.RcptParams) {
			params[i] = env.RcptParams[i]
		}
		rd := j.DSN.Rcpt[rcpt]
		if rd.Notify != "" {
			params[i] = append(params[i], "NOTIFY="+rd.Notify)
		}
		orcpt := rd.ORCPT
		if orcpt == "" {
			orcpt = "rfc822;" + xtext(rcpt)
		}
		params[i] = append(params[i], "ORCPT="+orcpt)
	}
	env.RcptParams = params
	return env
}

// xtext encodes s as RFC 3461 §4 xtext: "+", "=" and octets outside
// printable ASCII as "+XX".
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
