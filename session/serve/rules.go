package serve

import (
	"fmt"

	"go.uber.org/zap"
)

// Errors is a session's error budget, one rule for both protocols: every
// negative reply counts (SMTP 4xx and 5xx, as chasquid counts them; POP3
// -ERR), except one that the protocol defines as flow control (SMTP's 452 at
// the recipient limit, RFC 5321 §4.5.3.1.10), and once Max of them were sent
// the session says goodbye and closes, which also stops a cross-protocol
// client (a page of HTTP or of another protocol's commands) after a few lines.
type Errors struct {
	Max int // negative replies before the session closes; at least 1
	n   int
}

// Count records one negative reply and reports whether the budget is spent.
func (e *Errors) Count() (spent bool) {
	e.n++
	return e.n >= e.Max
}

// N is the number of negative replies so far.
func (e *Errors) N() int { return e.n }

// Recover, deferred at the top of a session goroutine, turns a panic into a
// log line with its stack and a last reply, sent by lastReply (which may be
// nil); the session then ends as usual, its connection closed by the
// deferred calls that follow.
func Recover(log *zap.Logger, lastReply func()) {
	p := recover()
	if p == nil {
		return
	}
	log.Error("session panic", zap.Error(fmt.Errorf("panic: %v", p)), zap.Stack("stack"))
	if lastReply != nil {
		lastReply()
	}
}
