package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
)

// bounceRetry is the longest wait before trying again to queue a bounce
// that could not be queued (queue full, disk full): the original message
// waits for it and is attempted for nothing else.
const bounceRetry = time.Minute

// bounce queues one bounce to env.From for the recipients in env.Failed,
// and empties env.Failed once it is durable. A message from the null
// sender is never bounced (RFC 5321 §4.5.5, ARCHITECTURE.md contract 3): its
// failures are logged and dropped. Nor is a recipient that asked not to
// hear of failures (RFC 3461 §4.1: NOTIFY=NEVER, or without FAILURE): it is
// logged and dropped. On error env.Failed is kept, and the caller persists
// it so that the bounce is tried again, after a restart too.
func (q *Queue) bounce(ctx context.Context, h Handler, env *envelope, log *zap.Logger) error {
	env.Failed = notified(env, env.Failed, "FAILURE", "bounce suppressed by NOTIFY", log)
	if len(env.Failed) == 0 {
		return nil
	}
	if env.From == "" {
		log.Warn("bounce not sent for a message from the null sender", zap.Int("rcpts", len(env.Failed)))
		env.Failed = nil
		return nil
	}
	m := q.message(env, env.Attempts)
	id, err := q.queueReport(ctx, env.From, func(w io.Writer) error { return h.WriteBounce(w, m, env.Failed) })
	if err != nil {
		return fmt.Errorf("queue: bounce: %w", err)
	}
	log.Info("bounce queued", zap.String("rcpt", env.From), zap.String("bounce_msg_id", id),
		zap.Int("rcpts", len(env.Failed)))
	env.Failed = nil
	return nil
}

// warnDelay queues the delay notice of env (RFC 3464 Action: delayed) when
// its recipients in env.Rcpts are still pending past DelayWarning, once per
// message, about those that did not ask otherwise (RFC 3461 NOTIFY without
// DELAY): env.DelayWarned, persisted with the envelope by the caller,
// keeps it from going twice, across restarts too. It goes through the
// bounce path (room beyond MaxMessages), never to the null sender. A
// notice that cannot be queued is tried again after the next attempt.
func (q *Queue) warnDelay(ctx context.Context, h Handler, env *envelope, log *zap.Logger) {
	if env.DelayWarned || len(env.Rcpts) == 0 || !q.sched.warnDue(env.Received, time.Now()) {
		return
	}
	if env.From == "" {
		env.DelayWarned = true // nothing to send, nothing to look at again
		return
	}
	pending := make([]Failure, len(env.Rcpts))
	for i, rcpt := range env.Rcpts {
		pending[i] = env.Last[rcpt]
		pending[i].Rcpt = rcpt
	}
	if pending = notified(env, pending, "DELAY", "delay notice suppressed by NOTIFY", log); len(pending) == 0 {
		env.DelayWarned = true
		return
	}
	m := q.message(env, env.Attempts)
	id, err := q.queueReport(ctx, env.From, func(w io.Writer) error { return h.WriteDelay(w, m, pending) })
	if err != nil {
		log.Error("delay notice not queued, tried again after the next attempt", zap.Error(err))
		return
	}
	env.DelayWarned = true
	log.Info("delay notice queued", zap.String("rcpt", env.From), zap.String("bounce_msg_id", id),
		zap.Int("rcpts", len(pending)))
}

// notifySuccess queues one success notice (RFC 3461 §6.2, RFC 3464 Action:
// delivered or relayed) to env.From for the recipients in env.Succeeded,
// and empties env.Succeeded once it is durable. Like a bounce, it is kept
// in the envelope until then (the message stays), and never goes to the
// null sender.
func (q *Queue) notifySuccess(ctx context.Context, h Handler, env *envelope, log *zap.Logger) error {
	if len(env.Succeeded) == 0 {
		return nil
	}
	if env.From == "" {
		log.Warn("success notice not sent for a message from the null sender", zap.Int("rcpts", len(env.Succeeded)))
		env.Succeeded = nil
		return nil
	}
	m := q.message(env, env.Attempts)
	id, err := q.queueReport(ctx, env.From, func(w io.Writer) error { return h.WriteSuccess(w, m, env.Succeeded) })
	if err != nil {
		return fmt.Errorf("queue: success notice: %w", err)
	}
	log.Info("success notice queued", zap.String("rcpt", env.From), zap.String("bounce_msg_id", id),
		zap.Int("rcpts", len(env.Succeeded)))
	env.Succeeded = nil
	return nil
}

// notified returns the reports of rs whose recipient asked to be told of
// event (RFC 3461 NOTIFY), logging each one left out with msg.
func notified(env *envelope, rs []Failure, event, msg string, log *zap.Logger) []Failure {
	var out []Failure
	for _, f := range rs {
		if env.Notifies(f.Rcpt, event) {
			out = append(out, f)
			continue
		}
		log.Info(msg, zap.String("rcpt", f.Rcpt), zap.String("notify", env.Rcpt[f.Rcpt].Notify))
	}
	return out
}

// queueReport commits a report written by write as a new message from the
// null sender to rcpt, with the room bounces have beyond MaxMessages, and
// returns its id once it is durable.
func (q *Queue) queueReport(ctx context.Context, rcpt string, write func(io.Writer) error) (string, error) {
	d, err := q.newDraft(ctx, true)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(d, 32<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		d.Abort()
		return "", fmt.Errorf("write: %w", err)
	}
	if err := d.Commit(ctx, "", []string{rcpt}); err != nil {
		return "", err
	}
	return d.ID(), nil
}

// message is the Message handed to a Handler for attempt n of env.
func (q *Queue) message(env *envelope, n int) *Message {
	return &Message{
		ID:       env.ID,
		From:     env.From,
		Rcpts:    append([]string(nil), env.Rcpts...),
		Received: env.Received,
		Attempt:  n,
		Final:    q.sched.final(env.Received, n, time.Now()),
		Expires:  q.sched.expires(env.Received),
		BodyPath: q.bodyPath(env.ID),
		Size:     env.Size,
		Trace:    traceOf(env),
		DSN:      env.Params,
	}
}
