package queue

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// pending is a control action asked for while an attempt was in progress:
// it applies to the envelope the attempt brings back (applyPending).
type pending struct {
	retry  bool
	hold   *bool // set: hold (true) or release (false)
	drop   bool
	bounce bool // with drop
}

// busyNote is what an action on a message in an attempt answers.
const busyNote = " after the attempt in progress"

// ids lists the scheduled messages in acceptance order.
func (s *scheduler) ids() []string {
	ids := make([]string, 0, len(s.entries))
	for id := range s.entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// info is the snapshot of e; with history, its attempts too.
func (e *entry) info(history bool) MessageInfo {
	env := e.env
	mi := MessageInfo{ID: env.ID, From: env.From, Size: env.Size, Arrival: env.Received, Attempts: env.Attempts,
		Next: e.due, Held: env.Held, Busy: e.busy}
	status := stateOf(e) // the states the metrics count, by the same rule
	for _, rcpt := range env.Rcpts {
		l := env.last(rcpt)
		mi.Recipients = append(mi.Recipients, RcptInfo{Address: rcpt, Status: status,
			LastCode: l.Code, LastEnhanced: l.Enhanced, LastReply: l.Reply})
	}
	for _, f := range env.Failed {
		mi.Recipients = append(mi.Recipients, RcptInfo{Address: f.Rcpt, Status: RcptFailed,
			LastCode: f.Code, LastEnhanced: f.Enhanced, LastReply: f.Text})
	}
	if history {
		mi.History = slices.Clone(env.History)
	}
	return mi
}

// later notes an action for the end of e's attempt in progress.
func (e *entry) later() *pending {
	if e.pending == nil {
		e.pending = new(pending)
	}
	return e.pending
}

// retry makes e due now.
func (s *scheduler) retry(e *entry) ActionResult {
	switch {
	case e.busy:
		e.later().retry = true
		return ActionResult{Done: "due now" + busyNote}
	case e.env.Held:
		return ActionResult{Done: "held: not retried (release it to send it)"}
	}
	now := time.Now()
	e.due, e.env.Next = now, now
	heap.Push(&s.due, dueItem{due: now, id: e.env.ID})
	s.q.log.Info("message retry requested", zap.String("msg_id", e.env.ID))
	return ActionResult{Done: "due now"}
}

// setHeld holds or releases e and persists the flag; a released message is
// due at once.
func (s *scheduler) setHeld(e *entry, held bool) ActionResult {
	word := map[bool]string{true: "held", false: "released"}[held]
	if e.busy {
		e.later().hold = &held
		return ActionResult{Done: word + busyNote}
	}
	if e.env.Held == held {
		return ActionResult{Done: "already " + word}
	}
	from := stateOf(e)
	e.env.Held = held
	if err := s.q.persist(e.env); err != nil {
		e.env.Held = !held
		return ActionResult{Err: err}
	}
	s.gauges.move(from, stateOf(e))
	if held {
		s.q.log.Info("message held", zap.String("msg_id", e.env.ID))
	} else {
		now := time.Now()
		e.due, e.env.Next = now, now
		heap.Push(&s.due, dueItem{due: now, id: e.env.ID})
		s.q.log.Info("message released", zap.String("msg_id", e.env.ID))
	}
	return ActionResult{Done: word}
}

// drop removes e from the spool and the schedule; with bounce, a DSN for
// its recipients not done yet is queued first (bounce.go), and the message
// stays when that fails.
func (s *scheduler) drop(ctx context.Context, e *entry, bounce bool) ActionResult {
	if e.busy {
		p := e.later()
		p.drop, p.bounce = true, p.bounce || bounce
		return ActionResult{Done: "dropped" + busyNote}
	}
	env := e.env
	log := s.q.log.With(zap.String("msg_id", env.ID))
	done := "dropped"
	if bounce {
		b := *env
		b.Failed = slices.Clone(env.Failed)
		for _, rcpt := range env.Rcpts {
			b.Failed = append(b.Failed, droppedFailure(rcpt, env.last(rcpt)))
		}
		if err := s.q.bounce(ctx, s.h, &b, log); err != nil {
			return ActionResult{Err: fmt.Errorf("not dropped: %w", err)}
		}
		done = "dropped, bounce queued to <" + env.From + ">"
		if env.From == "" {
			done = "dropped (null sender: no bounce)"
		}
	}
	if err := s.q.removeEnv(env); err != nil {
		log.Error("message not removed from the spool", zap.Error(err))
	}
	delete(s.entries, env.ID)
	s.gauges.leave(stateOf(e))
	s.q.release()
	log.Info("message dropped", zap.Strings("rcpt", env.Rcpts), zap.Bool("bounce", bounce))
	return ActionResult{Done: done}
}

// droppedFailure is what the bounce of a dropped message says of rcpt:
// RFC 3463 5.0.0 (no more specific code fits an operator's decision), with
// the last reply the recipient got so that the sender learns why.
func droppedFailure(rcpt string, last TryResult) Failure {
	text := "removed from the queue by the postmaster"
	if last.Reply != "" {
		text += "; last attempt: " + last.Reply
	}
	return Failure{Rcpt: rcpt, Enhanced: "5.0.0", Text: text, Remote: last.Remote}
}

// applyPending carries out the actions asked for during e's attempt, now
// that its outcome is in.
func (s *scheduler) applyPending(ctx context.Context, e *entry) {
	p := e.pending
	e.pending = nil
	var r ActionResult
	switch {
	case p == nil:
		return
	case p.drop:
		r = s.drop(ctx, e, p.bounce)
	case p.hold != nil:
		r = s.setHeld(e, *p.hold)
		if p.retry && r.Err == nil {
			r = s.retry(e)
		}
	case p.retry:
		r = s.retry(e)
	}
	if r.Err != nil {
		s.q.log.Error("control action failed", zap.String("msg_id", e.env.ID), zap.Error(r.Err))
	}
}
