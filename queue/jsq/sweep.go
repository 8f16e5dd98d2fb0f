package jsq

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
)

// sweepEvery is how often Run looks for body objects no stream message
// names, and sweepAge (the de-duplication window) how old such an object
// must be: a commit puts its object before it publishes, and a publish
// retried within the window may still name it.
const (
	sweepEvery = dupWindow
	sweepAge   = dupWindow
)

// sweeper runs sweep every sweepEvery until ctx ends.
func (q *Queue) sweeper(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := q.sweep(ctx, sweepAge); err != nil || n > 0 {
				q.log.Info("unnamed body objects swept", zap.Int("count", n), zap.Error(err))
			}
		}
	}
}

// sweep deletes the body objects older than age that no stream message
// names: left by a commit whose publish failed with its outcome unknown
// (the body is kept then, in case the message was stored) when in fact it
// was not stored. It returns how many it deleted. Every node may sweep:
// deletes are idempotent.
func (q *Queue) sweep(ctx context.Context, age time.Duration) (int, error) {
	objs, err := q.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if o.Deleted || time.Since(o.ModTime) < age || !queue.ValidID(o.Name) {
			continue
		}
		_, err := q.stream.GetLastMsgForSubject(ctx, q.msgSubject(o.Name))
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // named by a queued message, or not known: kept
		}
		if err := q.obj.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return n, err
		}
		q.log.Warn("unnamed body object deleted", zap.String("msg_id", o.Name), zap.Time("stored", o.ModTime))
		n++
	}
	return n, ctx.Err()
}
