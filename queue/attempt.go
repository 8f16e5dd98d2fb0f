package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// errNoResult is the temporary failure of a recipient the Handler gave no
// Result for.
var errNoResult = errors.New("queue: no delivery result for recipient")

// attempt runs in a worker goroutine: one delivery attempt of env, whose
// outcome is persisted before it is sent to Run.
func (q *Queue) attempt(ctx context.Context, h Handler, env envelope, results chan<- outcome) {
	out := outcome{id: env.ID}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery attempt", zap.String("msg_id", env.ID),
				zap.Any("error", p), zap.Stack("stack"))
			e := env
			e.Attempts++
			e.Next = time.Now().Add(q.wait(e.Attempts))
			out.env = &e
		}
		results <- out
	}()
	if len(env.Rcpts) == 0 {
		// Only a bounce is left to queue (it failed before).
		out.env = q.settle(ctx, h, &env, q.message(&env, env.Attempts), nil)
		return
	}
	m := q.message(&env, env.Attempts+1)
	q.log.Debug("delivery attempt", zap.String("msg_id", env.ID), zap.Int("attempt", m.Attempt),
		zap.Strings("rcpt", env.Rcpts), zap.Bool("final", m.Final))
	res := q.deliver(ctx, h, m, env.Rcpts)
	out.env = q.settle(ctx, h, &env, m, res)
}

// deliver calls h, turning a panic into a temporary failure of every recipient.
func (q *Queue) deliver(ctx context.Context, h Handler, m *Message, rcpts []string) (res []Result) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery handler", zap.String("msg_id", m.ID),
				zap.Any("error", p), zap.Stack("stack"))
			err := fmt.Errorf("queue: delivery handler panicked: %v", p)
			res = make([]Result, len(rcpts))
			for i, r := range rcpts {
				res[i] = Result{Rcpt: r, Err: err}
			}
		}
	}()
	return h.Deliver(ctx, m)
}

// wait is the delay before attempt n+1 after attempt n failed.
func (q *Queue) wait(n int) time.Duration {
	switch {
	case len(q.retry) == 0:
		return time.Minute
	case n-1 < len(q.retry):
		return q.retry[max(n-1, 0)]
	default:
		return q.retry[len(q.retry)-1]
	}
}

// settle applies the results of attempt m to env and persists them:
// delivered recipients leave the envelope; failed ones (permanently, or on
// the final attempt) are bounced by the queue (bounce.go), and kept in the
// envelope until their bounce is durable; the others wait for the next
// attempt. The message is removed when nothing is left. It returns nil when
// the message is gone.
func (q *Queue) settle(ctx context.Context, h Handler, env *envelope, m *Message, res []Result) *envelope {
	got := make(map[string]Result, len(res))
	for _, r := range res {
		if _, dup := got[r.Rcpt]; !dup {
			got[r.Rcpt] = r
		}
	}
	log := q.log.With(zap.String("msg_id", env.ID))
	// A stop that cut the final attempt short proves nothing of the
	// recipients it left failed: they are not bounced, and that attempt is
	// made again at the next start.
	cut := m.Final && ctx.Err() != nil
	var left []string
	errs := make(map[string]string)
	for _, rcpt := range env.Rcpts {
		r, ok := got[rcpt]
		if !ok {
			r = Result{Rcpt: rcpt, Err: errNoResult}
		}
		switch {
		case r.Err == nil:
		case r.Permanent || m.Final && !cut:
			f := r.Failure
			f.Rcpt = rcpt
			if f.Text == "" {
				f.Text = r.Err.Error()
			}
			log.Info("recipient failed permanently", zap.String("rcpt", rcpt), zap.Int("smtp_code", f.Code),
				zap.String("enhanced", f.Enhanced), zap.String("error", f.Text), zap.Int("attempt", m.Attempt))
			env.Failed = append(env.Failed, f)
		default:
			left = append(left, rcpt)
			errs[rcpt] = r.Err.Error()
		}
	}
	env.Attempts = m.Attempt
	if cut && len(left) > 0 {
		env.Attempts = m.Attempt - 1
	}
	env.Rcpts, env.Errors = left, errs
	bouncing := len(env.Failed) > 0 && env.From != ""
	if err := q.bounce(ctx, h, env, log); err != nil {
		log.Error("bounce not queued, message kept until it is", zap.Error(err))
	} else if bouncing {
		q.metrics.BounceQueued()
	}
	if len(left) == 0 && len(env.Failed) == 0 {
		if err := q.remove(env.ID); err != nil {
			log.Error("message not removed from the spool", zap.Error(err))
		}
		log.Info("message done", zap.Int("attempt", m.Attempt),
			zap.Int64("duration_ms", time.Since(env.Received).Milliseconds()))
		return nil
	}
	if len(left) > 0 {
		env.Next = time.Now().Add(q.wait(m.Attempt))
	} else {
		env.Next = time.Now().Add(min(q.wait(1), bounceRetry))
	}
	if err := q.persist(env); err != nil {
		// Kept in memory; after a restart the last saved state is retried.
		log.Error("envelope not saved", zap.Error(err))
	}
	if len(left) > 0 {
		log.Info("retry scheduled", zap.Int("attempt", m.Attempt), zap.Time("next_attempt", env.Next),
			zap.Strings("rcpt", left), zap.String("error", errs[left[0]]))
	} else {
		log.Info("bounce retry scheduled", zap.Time("next_attempt", env.Next))
	}
	return env
}
