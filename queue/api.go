package queue

import (
	"context"
	"errors"
	"io"
	"time"
)

// Message is one spooled message handed to a Handler for one delivery attempt.
type Message struct {
	ID       string    // msg_id, assigned at acceptance
	From     string    // reverse-path, "" for the null sender
	Rcpts    []string  // recipients still to be done (not yet delivered or bounced)
	Received time.Time // time of acceptance
	Attempt  int       // 1 for the first attempt
	Final    bool      // the last attempt allowed: temporary failures must be treated as permanent
	Expires  time.Time // when the message stops being retried (Options.MaxLifetime); zero: never
	BodyPath string    // spool file holding the body (Received header included); read-only
	Size     int64     // the spool file's size in octets (trace fields included)
	// Trace, when Len > 0, says that the spool file starts with the trace
	// fields local delivery would add (trace.go); Open skips them.
	Trace Trace
	// DSN is the sender's DSN parameters (RFC 3461), keyed by recipient
	// as queued; read-only.
	DSN Params
}

// Result is the outcome for one recipient of a delivery attempt.
type Result struct {
	Rcpt string
	// Err is nil when the recipient is delivered (done). Otherwise the
	// recipient failed: for good when Permanent is set or the attempt was
	// Final, and then the queue bounces it with Failure; else it is retried.
	Err       error
	Permanent bool
	Failure   Failure // what a bounce reports of a failed recipient
	// Notice, for a delivered recipient, is the Action of its success
	// notice when it asked for one (RFC 3461 NOTIFY=SUCCESS): "delivered"
	// (into its mailbox) or "relayed" (to a next hop without DSN); ""
	// sends none (the next hop offers DSN and notifies itself). Failure.
	// Remote may name the next hop.
	Notice string
}

// Failure is what a bounce (RFC 3464 DSN) reports of one failed recipient.
// It is kept in the envelope until the bounce is durable.
type Failure struct {
	Rcpt     string `json:"rcpt"`
	Code     int    `json:"code,omitempty"`     // remote SMTP reply code, 0 when none
	Enhanced string `json:"enhanced,omitempty"` // RFC 3463 status
	Text     string `json:"text"`               // reply text or local error
	Remote   string `json:"remote,omitempty"`   // mail exchanger that answered
	// Status, when set, is the RFC 3463 status the report gives instead of
	// Enhanced: 5.4.7 for a recipient still failing temporarily when the
	// queue gave up, whose last reply Code, Enhanced and Text keep.
	Status string `json:"status,omitempty"`
	// Action is set in a success notice: "delivered" or "relayed".
	Action string `json:"action,omitempty"`
}

// Handler delivers messages and writes their bounces, delay and success
// notices; package delivery implements it. The queue owns bounces (and
// notices): it asks WriteBounce for the text,
// queues it itself (with room kept for bounces beyond MaxMessages), and
// keeps the original until the bounce is durable (ARCHITECTURE.md contract 7).
type Handler interface {
	// Deliver makes one attempt for every recipient of m and returns one Result
	// per recipient. It is called from several worker goroutines at once.
	Deliver(ctx context.Context, m *Message) []Result
	// WriteBounce writes the whole bounce message (header and body) to
	// m.From about the failed recipients of m. m.From is never empty.
	WriteBounce(w io.Writer, m *Message, failed []Failure) error
	// WriteDelay writes the whole delay notice (RFC 3464 Action: delayed)
	// to m.From about the recipients of m still pending, each with its
	// last temporary failure; m.Expires says until when they are retried.
	// m.From is never empty.
	WriteDelay(w io.Writer, m *Message, pending []Failure) error
	// WriteSuccess writes the whole success notice (RFC 3461 §6.2) to
	// m.From about recipients of m delivered or relayed, each with its
	// Action (and Remote when relayed). m.From is never empty.
	WriteSuccess(w io.Writer, m *Message, done []Failure) error
}

// ErrFull is returned by NewMessage/Commit when the queue holds as many messages
// as allowed (SMTP answers 452 4.3.1).
var ErrFull = errors.New("queue: full")
