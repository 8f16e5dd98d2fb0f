package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
			e.Next = q.sched.next(e.Received, e.Attempts, time.Now())
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

// settle applies the results of attempt m to env and persists them:
// delivered recipients leave the envelope (their success notices queued
// as bounces are); failed ones (permanently, or on
// the final attempt) are bounced by the queue (bounce.go), and kept in the
// envelope until their bounce is durable; the others wait for the next
// attempt, and the sender hears of the delay once (warnDelay). The message
// is removed when nothing is left. It returns nil when the message is gone.
func (q *Queue) settle(ctx context.Context, h Handler, env *envelope, m *Message, res []Result) *envelope {
	log := q.log.With(zap.String("msg_id", env.ID))
	// A stop that cut the final attempt short proves nothing of the
	// recipients it left failed: they are not bounced, and that attempt is
	// made again at the next start.
	cut := m.Final && ctx.Err() != nil
	got := byRcpt(res)
	env.record(m, got, cut)
	q.classify(env, m, got, cut, log)
	left := env.Rcpts
	env.Attempts = m.Attempt
	if cut && len(left) > 0 {
		env.Attempts = m.Attempt - 1
	}
	bouncing := env.From != "" && slices.ContainsFunc(env.Failed, func(f Failure) bool { return env.Notifies(f.Rcpt, "FAILURE") })
	if err := q.bounce(ctx, h, env, log); err != nil {
		log.Error("bounce not queued, message kept until it is", zap.Error(err))
	} else if bouncing {
		q.metrics.BounceQueued()
	}
	if err := q.notifySuccess(ctx, h, env, log); err != nil {
		log.Error("success notice not queued, message kept until it is", zap.Error(err))
	}
	q.warnDelay(ctx, h, env, log)
	if len(left) == 0 && len(env.Failed) == 0 && len(env.Succeeded) == 0 {
		if err := q.removeEnv(env); err != nil {
			log.Error("message not removed from the spool", zap.Error(err))
		}
		log.Info("message done", zap.Int("attempt", m.Attempt),
			zap.Int64("duration_ms", time.Since(env.Received).Milliseconds()))
		return nil
	}
	switch {
	case len(left) > 0 && ctx.Err() != nil:
		// The stop cut the attempt short, not the far side: due again as
		// soon as the queue runs again (the next attempt survives a
		// restart, so a retry wait here would delay it for nothing).
		env.Next = time.Now()
	case len(left) > 0:
		env.Next = q.sched.next(env.Received, m.Attempt, time.Now())
	default:
		env.Next = time.Now().Add(min(q.sched.wait(1), bounceRetry))
	}
	if err := q.persist(env); err != nil {
		// Kept in memory; after a restart the last saved state is retried.
		log.Error("envelope not saved", zap.Error(err))
	}
	if len(left) > 0 {
		log.Info("retry scheduled", zap.Int("attempt", m.Attempt), zap.Time("next_attempt", env.Next),
			zap.Strings("rcpt", left), zap.String("error", env.Errors[left[0]]))
	} else {
		log.Info("bounce retry scheduled", zap.Time("next_attempt", env.Next))
	}
	return env
}

// classify sorts env's recipients by their result in res: delivered ones
// leave (to env.Succeeded when they asked for a success notice and the
// result says one is ours to send); failed ones (permanently, or temporarily on a final attempt that
// was not cut short, then with status 5.4.7 and their last reply) go to
// env.Failed; the others stay in env.Rcpts with their last failure in
// env.Errors and env.Last.
func (q *Queue) classify(env *envelope, m *Message, got map[string]Result, cut bool, log *zap.Logger) {
	var left []string
	errs := make(map[string]string)
	last := make(map[string]Failure)
	for _, rcpt := range env.Rcpts {
		r, ok := got[rcpt]
		if !ok {
			r = Result{Rcpt: rcpt, Err: errNoResult}
		}
		if r.Err == nil {
			if r.Notice != "" && env.Notifies(rcpt, "SUCCESS") {
				env.Succeeded = append(env.Succeeded, Failure{Rcpt: rcpt, Action: r.Notice, Remote: r.Failure.Remote})
			}
			continue
		}
		f := r.Failure
		f.Rcpt = rcpt
		if f.Text == "" {
			f.Text = r.Err.Error()
		}
		if !r.Permanent && (!m.Final || cut) {
			left = append(left, rcpt)
			errs[rcpt], last[rcpt] = r.Err.Error(), f
			continue
		}
		if !r.Permanent {
			f.Status = statusExpired
		}
		log.Info("recipient failed permanently", zap.String("rcpt", rcpt), zap.Int("smtp_code", f.Code),
			zap.String("enhanced", cmp.Or(f.Status, f.Enhanced)), zap.String("error", f.Text), zap.Int("attempt", m.Attempt))
		env.Failed = append(env.Failed, f)
	}
	env.Rcpts, env.Errors, env.Last = left, errs, last
}

// byRcpt indexes an attempt's results by recipient (the first result for a
// recipient counts).
func byRcpt(res []Result) map[string]Result {
	got := make(map[string]Result, len(res))
	for _, r := range res {
		if _, dup := got[r.Rcpt]; !dup {
			got[r.Rcpt] = r
		}
	}
	return got
}
