// Package logvocab owns the closed parts of gomta's log vocabulary (DESIGN.md,
// Logs): the values of the proto field and the names of the fields that
// several packages must spell alike. It is a leaf: it imports nothing, so
// that every package that logs may use it.
//
// Invariants: every log line about a mail host carries host and one of
// Protos as proto; a mailbox's owner is logged as User wherever it appears
// (the mailbox actor, a POP3 login), a message's recipient as Rcpt (on a
// mailbox's line only beside User: a delivery names both). The
// end-to-end test cmd/mtad/vocab_test.go checks a real run's log against it.
package logvocab

// Field names that several packages log.
const (
	Host      = "host"       // the mail host's name
	Proto     = "proto"      // one of Protos: the part of the host that wrote the line
	SessionID = "session_id" // an SMTP or POP3 session (serve.SessionID)
	User      = "user"       // the owner of a mailbox: a POP3 login, the mailbox actor
	Rcpt      = "rcpt"       // a recipient of a message
	Converted = "converted"  // how a relayed message was converted for the next hop ("8bit-to-qp")
)

// Values of the proto field: the part of a mail host that wrote the line.
const (
	SMTP     = "smtp"     // an SMTP server session (session/smtp)
	POP3     = "pop3"     // a POP3 server session (session/pop3)
	Queue    = "queue"    // the spool and its schedule (queue)
	Delivery = "delivery" // the delivery workers: recipients split by domain (delivery)
	Relay    = "relay"    // outbound SMTP to the next MTA (delivery/relay)
	Mailbox  = "mailbox"  // the mailbox actors and their Maildirs (delivery/mailbox)
)

// Protos is every value of the proto field.
var Protos = []string{SMTP, POP3, Queue, Delivery, Relay, Mailbox}

// Control is the proto of the control socket (mta/control), a part of the
// process rather than of one mail host: its lines carry no host.
const Control = "control"

// ProcessProtos are the protos of lines about the whole process.
var ProcessProtos = []string{Control}
