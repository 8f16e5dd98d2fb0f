package queue

import "strings"

// Params is what the sender asked of delivery status notifications (RFC
// 3461), stored with the envelope. Values are as the SMTP session checked
// them: Ret "FULL", "HDRS" or "", EnvID and ORCPT still xtext.
type Params struct {
	Ret   string                `json:"ret,omitempty"`
	EnvID string                `json:"envid,omitempty"`
	Rcpt  map[string]RcptParams `json:"rcpt_params,omitempty"` // by recipient as queued
}

// RcptParams is the DSN parameters of one recipient.
type RcptParams struct {
	// Notify is "NEVER" or a comma-separated subset of SUCCESS, FAILURE,
	// DELAY; "" when not given, which means FAILURE,DELAY (DefaultNotify).
	Notify string `json:"notify,omitempty"`
	ORCPT  string `json:"orcpt,omitempty"` // "addr-type;xtext" as given; "" when not given
}

// DefaultNotify is what a recipient without NOTIFY is notified of: RFC
// 3461 §4.1 leaves FAILURE or FAILURE,DELAY to the MTA; gomta sends delay
// notices by default, as it did before DSN was offered.
const DefaultNotify = "FAILURE,DELAY"

// Notifies reports whether rcpt asked to be told of event ("SUCCESS",
// "FAILURE" or "DELAY"), NOTIFY=NEVER asking for none.
func (p *Params) Notifies(rcpt, event string) bool {
	n := p.Rcpt[rcpt].Notify
	if n == "" {
		n = DefaultNotify
	}
	for _, k := range strings.Split(n, ",") {
		if k == event {
			return true
		}
	}
	return false
}

// SetParams records the DSN parameters of the message, to be stored with
// its envelope at Commit. p.Rcpt is keyed by recipient as it is given to
// Commit; entries for other recipients are dropped there.
func (d *Draft) SetParams(p Params) { d.params = p }

// Only returns p with only the entries of rcpts, nil when none is left.
func (p Params) Only(rcpts []string) Params {
	if len(p.Rcpt) == 0 {
		return p
	}
	out := p
	out.Rcpt = make(map[string]RcptParams, len(rcpts))
	for _, r := range rcpts {
		if rp, ok := p.Rcpt[r]; ok {
			out.Rcpt[r] = rp
		}
	}
	if len(out.Rcpt) == 0 {
		out.Rcpt = nil
	}
	return out
}
