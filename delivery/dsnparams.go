package delivery

import (
	"gomta/delivery/relay"
	"gomta/queue"
)

// The Actions of success notices (RFC 3464 §2.3.3), queue.Result.Notice.
const (
	noticeDelivered = "delivered" // into a local mailbox
	noticeRelayed   = "relayed"   // to a next hop that does not offer DSN
)

// relayNotice is the success notice a relayed recipient gets from us: none
// when the next hop offers DSN (the parameters were passed on, and it
// notifies the sender itself), else "relayed" (RFC 3461 §6.2.1 c).
func relayNotice(out relay.Outcome) string {
	if out.DSN {
		return ""
	}
	return noticeRelayed
}

// relayDSN is the message's DSN parameters as the relay passes them on.
func relayDSN(p queue.Params) relay.DSN {
	d := relay.DSN{Ret: p.Ret, EnvID: p.EnvID}
	if len(p.Rcpt) > 0 {
		d.Rcpt = make(map[string]relay.RcptDSN, len(p.Rcpt))
		for r, rp := range p.Rcpt {
			d.Rcpt[r] = relay.RcptDSN{Notify: rp.Notify, ORCPT: rp.ORCPT}
		}
	}
	return d
}
