package queue

import (
	"bufio"
	"context"
	"fmt"
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
// failures are logged and dropped. On error env.Failed is kept, and the
// caller persists it so that the bounce is tried again, after a restart too.
func (q *Queue) bounce(ctx context.Context, h Handler, env *envelope, log *zap.Logger) error {
	if len(env.Failed) == 0 {
		return nil
	}
	if env.From == "" {
		log.Warn("bounce not sent for a message from the null sender", zap.Int("rcpts", len(env.Failed)))
		env.Failed = nil
		return nil
	}
	d, err := q.newDraft(ctx, true)
	if err != nil {
		return fmt.Errorf("queue: bounce: %w", err)
	}
	m := q.message(env, env.Attempts)
	bw := bufio.NewWriterSize(d, 32<<10)
	err = h.WriteBounce(bw, m, env.Failed)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		d.Abort()
		return fmt.Errorf("queue: bounce: write: %w", err)
	}
	if err := d.Commit(ctx, "", []string{env.From}); err != nil {
		return fmt.Errorf("queue: bounce: %w", err)
	}
	log.Info("bounce queued", zap.String("rcpt", env.From), zap.String("bounce_msg_id", d.ID()),
		zap.Int("rcpts", len(env.Failed)))
	env.Failed = nil
	return nil
}

// message is the Message handed to a Handler for attempt n of env.
func (q *Queue) message(env *envelope, n int) *Message {
	return &Message{
		ID:       env.ID,
		From:     env.From,
		Rcpts:    append([]string(nil), env.Rcpts...),
		Received: env.Received,
		Attempt:  n,
		Final:    n > len(q.retry),
		BodyPath: q.bodyPath(env.ID),
		Size:     env.Size,
	}
}
