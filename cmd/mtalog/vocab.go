package main

// The messages of the gomta log lines mtalog reads (the contract between
// the daemon's logs and mtalog: DESIGN.md, Logs and Log links).
const (
	msgAccepted       = "message accepted"             // smtp: msg_id, remote, mail_from, rcpt, bytes, message_id, tls, auth_user, upstream_msg_id
	msgDelivered      = "message delivered"            // mailbox: msg_id, user, rcpt, file
	msgRelayDelivered = "relay delivered"              // relay: msg_id, rcpt, domain, mx, mx_addr, remote_reply, attempt
	msgRelayDeferred  = "relay deferred"               // relay: as relay delivered, with error when there was no reply
	msgRelayBounced   = "relay bounced"                // relay: as relay deferred
	msgRetry          = "retry scheduled"              // queue: msg_id, attempt, next_attempt, rcpt, error
	msgFailed         = "recipient failed permanently" // queue: msg_id, rcpt, smtp_code, enhanced, error
	msgBounceQueued   = "bounce queued"                // queue: msg_id (the original), bounce_msg_id, rcpt (the sender)
	msgDelayQueued    = "delay notice queued"          // queue: msg_id, bounce_msg_id
	msgDone           = "message done"                 // queue: msg_id, attempt, duration_ms
	msgRetrieved      = "message retrieved"            // pop3: session_id, user, command, msg_id, bytes
	msgMarkedDeleted  = "message marked deleted"       // pop3: session_id, user, msg_id
	msgDeleted        = "message deleted"              // pop3: session_id, user, msg_id (at QUIT)
	msgRefused        = "command refused"              // smtp: remote, smtp_code, enhanced, error
	msgSessionEnd     = "session end"                  // smtp, pop3: remote

	msgSMTPAuthFailed  = "authentication failed"            // smtp: remote
	msgSMTPLockedOut   = "login locked out"                 // smtp: remote
	msgPOP3LoginFailed = "login failed"                     // pop3: remote
	msgPOP3LockedOut   = "login refused, too many failures" // pop3: remote
)
