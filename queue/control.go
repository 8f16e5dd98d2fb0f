package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gomta/session/metrics"
)

// ErrUnknown is the error of a control action on an id the queue does not
// hold (never queued, or already delivered, bounced or dropped).
var ErrUnknown = errors.New("no such message in the queue")

// Recipient states as the control API reports them.
const (
	RcptDeferred = "deferred" // waiting for its next attempt
	RcptActive   = "active"   // an attempt is in progress, or the first one is pending
	RcptHeld     = "held"     // the message is held: never attempted until released
	RcptFailed   = "failed"   // failed for good; its bounce waits to be queued
)

// Results of one recipient in one attempt (Try).
const (
	TryDelivered = "delivered"
	TryDeferred  = "deferred"
	TryFailed    = "failed"
)

// maxHistory is how many attempts an envelope remembers: enough to see a
// pattern (the same reply every time, or a far host that changed its mind),
// few enough that an envelope rewritten after every attempt stays small.
const maxHistory = 8

// Try is one delivery attempt as the envelope's history keeps it.
type Try struct {
	Time    time.Time   `json:"time"`
	Attempt int         `json:"attempt"`
	Results []TryResult `json:"results"`
}

// TryResult is what one attempt did for one recipient.
type TryResult struct {
	Rcpt     string `json:"rcpt"`
	Result   string `json:"result"`             // TryDelivered, TryDeferred or TryFailed
	Code     int    `json:"code,omitempty"`     // SMTP reply code, 0 when none
	Enhanced string `json:"enhanced,omitempty"` // RFC 3463 status
	Reply    string `json:"reply,omitempty"`    // reply text or local error
	Remote   string `json:"remote,omitempty"`   // mail exchanger that answered
}

// MessageInfo is a snapshot of one queued message.
type MessageInfo struct {
	ID         string
	From       string // "" for the null sender
	Size       int64
	Arrival    time.Time
	Attempts   int
	Next       time.Time // next attempt (a held message is not attempted)
	Held       bool
	Busy       bool // an attempt is in progress
	Recipients []RcptInfo
	History    []Try // Show only: the last attempts, oldest first
}

// RcptInfo is the state of one recipient not done yet.
type RcptInfo struct {
	Address      string
	Status       string // RcptDeferred, RcptActive, RcptHeld or RcptFailed
	LastCode     int
	LastEnhanced string
	LastReply    string
}

// Stats counts the queued messages by state.
type Stats struct {
	Messages int
	Deferred int       // waiting for their next attempt
	Active   int       // an attempt in progress
	Held     int       // held by the operator
	Oldest   time.Time // arrival of the oldest message; zero when empty
}

// ActionResult is what a control action did to one id.
type ActionResult struct {
	ID   string
	Done string // what was done, in words; "" when Err is set
	Err  error  // ErrUnknown, or why the action failed
}

// ctlRequest is one control request. Run calls do on its own goroutine, so
// the schedule keeps one writer; done is closed when do has returned.
type ctlRequest struct {
	do   func(ctx context.Context, s *scheduler)
	done chan struct{}
}

// control hands do to Run and waits until it has run. It fails only when ctx
// ends first (Run is not running, or is stopping).
func (q *Queue) control(ctx context.Context, do func(ctx context.Context, s *scheduler)) error {
	done := make(chan struct{})
	select {
	case q.ctl <- ctlRequest{do: do, done: done}:
	case <-ctx.Done():
		return fmt.Errorf("queue: the queue is not running: %w", ctx.Err())
	}
	<-done // Run finishes every request it has taken
	return nil
}

// List returns a snapshot of every queued message, in acceptance order.
func (q *Queue) List(ctx context.Context) ([]MessageInfo, error) {
	var out []MessageInfo
	err := q.control(ctx, func(_ context.Context, s *scheduler) {
		s.takeInbox()
		out = make([]MessageInfo, 0, len(s.entries))
		for _, id := range s.ids() {
			out = append(out, s.entries[id].info(false))
		}
	})
	return out, err
}

// Show returns one message with its history of attempts, or ErrUnknown.
func (q *Queue) Show(ctx context.Context, id string) (MessageInfo, error) {
	var mi MessageInfo
	found := false
	err := q.control(ctx, func(_ context.Context, s *scheduler) {
		s.takeInbox()
		if e := s.entries[id]; e != nil {
			mi, found = e.info(true), true
		}
	})
	if err == nil && !found {
		err = ErrUnknown
	}
	return mi, err
}

// Stats counts the queued messages by state.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := q.control(ctx, func(_ context.Context, s *scheduler) {
		s.takeInbox()
		for _, e := range s.entries {
			st.Messages++
			switch stateOf(e) { // the states the metrics count, by the same rule
			case metrics.StateActive:
				st.Active++
			case metrics.StateHeld:
				st.Held++
			default:
				st.Deferred++
			}
			if st.Oldest.IsZero() || e.env.Received.Before(st.Oldest) {
				st.Oldest = e.env.Received
			}
		}
	})
	return st, err
}

// Retry makes the messages ids (every message when all is set) due now. A
// held message stays held: release it instead.
func (q *Queue) Retry(ctx context.Context, ids []string, all bool) ([]ActionResult, error) {
	return q.act(ctx, ids, all, func(ctx context.Context, s *scheduler, e *entry) ActionResult {
		return s.retry(e)
	})
}

// Hold keeps the messages ids from being attempted until they are released,
// across restarts too (the flag is in the envelope).
func (q *Queue) Hold(ctx context.Context, ids []string) ([]ActionResult, error) {
	return q.act(ctx, ids, false, func(ctx context.Context, s *scheduler, e *entry) ActionResult {
		return s.setHeld(e, true)
	})
}

// Release lets held messages go: each is due at once.
func (q *Queue) Release(ctx context.Context, ids []string) ([]ActionResult, error) {
	return q.act(ctx, ids, false, func(ctx context.Context, s *scheduler, e *entry) ActionResult {
		return s.setHeld(e, false)
	})
}

// Drop removes the messages ids from the queue; with bounce, a DSN naming
// every recipient not done yet is queued to the sender first (and the
// message is kept when it cannot be).
func (q *Queue) Drop(ctx context.Context, ids []string, bounce bool) ([]ActionResult, error) {
	return q.act(ctx, ids, false, func(ctx context.Context, s *scheduler, e *entry) ActionResult {
		return s.drop(ctx, e, bounce)
	})
}

// act runs f on Run's goroutine for each id (or every message when all is
// set), with one result per id in the order given.
func (q *Queue) act(ctx context.Context, ids []string, all bool,
	f func(context.Context, *scheduler, *entry) ActionResult) ([]ActionResult, error) {
	var out []ActionResult
	err := q.control(ctx, func(ctx context.Context, s *scheduler) {
		s.takeInbox()
		if all {
			ids = s.ids()
		}
		for _, id := range ids {
			e := s.entries[id]
			if e == nil {
				out = append(out, ActionResult{ID: id, Err: ErrUnknown})
				continue
			}
			r := f(ctx, s, e)
			r.ID = id
			out = append(out, r)
		}
	})
	return out, err
}

// OpenBody opens the body of a queued message for reading (ErrUnknown when
// there is none). Bodies are never written once committed; one may be
// removed while it is read, and the reader then still reads it whole.
func (q *Queue) OpenBody(id string) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, ErrUnknown
	}
	f, err := os.Open(q.bodyPath(id))
	if isNotExist(err) {
		return nil, ErrUnknown
	}
	return f, err
}

// record appends attempt m's results (got, by recipient) for the recipients
// pending before it to the history, keeping the last maxHistory attempts.
// A fresh slice: the scheduler's copy of the envelope shares the old one.
func (env *envelope) record(m *Message, got map[string]Result, cut bool) {
	t := Try{Time: time.Now().UTC(), Attempt: m.Attempt, Results: make([]TryResult, 0, len(env.Rcpts))}
	for _, rcpt := range env.Rcpts {
		r, ok := got[rcpt]
		tr := TryResult{Rcpt: rcpt, Result: TryDelivered}
		switch {
		case !ok:
			tr.Result, tr.Reply = TryDeferred, errNoResult.Error()
		case r.Err != nil:
			tr.Result = TryDeferred
			if r.Permanent || m.Final && !cut {
				tr.Result = TryFailed
			}
			tr.Code, tr.Enhanced, tr.Reply, tr.Remote = r.Failure.Code, r.Failure.Enhanced, r.Failure.Text, r.Failure.Remote
			if tr.Reply == "" {
				tr.Reply = r.Err.Error()
			}
		}
		t.Results = append(t.Results, tr)
	}
	keep := env.History[max(len(env.History)-(maxHistory-1), 0):]
	env.History = append(append(make([]Try, 0, len(keep)+1), keep...), t)
}

// last is the latest result the history holds for rcpt (zero when none).
func (env *envelope) last(rcpt string) TryResult {
	for i := len(env.History) - 1; i >= 0; i-- {
		for _, r := range env.History[i].Results {
			if r.Rcpt == rcpt {
				return r
			}
		}
	}
	return TryResult{}
}
