package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
)

// errDraftDone is returned when a committed or aborted Draft is used again.
var errDraftDone = errors.New("queue: draft already committed or aborted")

// Draft is a message being received. It is used by one goroutine (the SMTP
// session) and implements session/smtp.MessageWriter.
type Draft struct {
	q    *Queue
	id   string
	f    *bodyFile // msg/<id>, written through: the session already writes in 32 KiB chunks
	size int64
	err  error // first write error; the draft is already thrown away
	done bool
	// params is the DSN parameters (SetParams), stored with the envelope.
	params Params
	// trace is the trace fields the body starts with (WriteTrace).
	trace *Trace
}

// NewMessage starts a draft: its body file is created in msg/ at once (a
// body there without an add record in the journal is a draft, or the trace
// of one that a crash interrupted, removed at load). It returns ErrFull when
// the queue holds MaxMessages messages (drafts included).
func (q *Queue) NewMessage(ctx context.Context) (*Draft, error) {
	return q.newDraft(ctx, false)
}

// newDraft is NewMessage; bounce drafts have room beyond MaxMessages.
func (q *Queue) newDraft(ctx context.Context, bounce bool) (*Draft, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !q.reserve(bounce) {
		return nil, ErrFull
	}
	id := q.newID()
	q.mu.Lock()
	q.drafts[id] = struct{}{}
	q.mu.Unlock()
	// Read-only: the body is never written through another descriptor than
	// this one. 0400 marks a draft; Commit makes it 0440 (recover.go).
	f, err := createBody(q.bodyPath(id), modeDraft)
	if err != nil {
		q.forget(id)
		return nil, fmt.Errorf("queue: new message: %w", err)
	}
	return &Draft{q: q, id: id, f: f}, nil
}

// Submit queues a message in one call (bounces): NewMessage, copy, Commit.
func (q *Queue) Submit(ctx context.Context, from string, rcpts []string, body io.Reader) (string, error) {
	d, err := q.NewMessage(ctx)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(d, body); err != nil {
		d.Abort()
		return "", fmt.Errorf("queue: submit: %w", err)
	}
	if err := d.Commit(ctx, from, rcpts); err != nil {
		return "", err
	}
	return d.id, nil
}

// forget drops a draft that will never be committed.
func (q *Queue) forget(id string) {
	q.mu.Lock()
	delete(q.drafts, id)
	q.mu.Unlock()
	q.release()
}

// ID is the msg_id assigned at acceptance.
func (d *Draft) ID() string { return d.id }

// Write appends to the body. On a disk error the draft is thrown away and
// every later call returns the error.
func (d *Draft) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.done {
		return 0, errDraftDone
	}
	n, err := d.f.Write(p)
	d.size += int64(n)
	if err != nil {
		d.fail(fmt.Errorf("queue: write %s: %w", d.id, err))
		return n, d.err
	}
	return n, nil
}

// fail records the first error and throws the draft away.
func (d *Draft) fail(err error) {
	d.err = err
	d.discard()
}

// discard closes and removes every file of the draft and releases its place.
func (d *Draft) discard() {
	if d.done {
		return
	}
	d.done = true
	if d.f != nil {
		_ = d.f.Close()
	}
	q := d.q
	_ = os.Remove(q.bodyPath(d.id))
	q.forget(d.id)
}

// Abort throws the partial message away. It does nothing after Commit.
func (d *Draft) Abort() { d.discard() }

// Commit makes the message and its envelope durable (ARCHITECTURE.md contract 1)
// and hands it to Run. When it returns nil the message is on stable storage;
// on error nothing of the message is left.
func (d *Draft) Commit(ctx context.Context, from string, rcpts []string) error {
	if d.err != nil {
		return d.err
	}
	if d.done {
		return errDraftDone
	}
	if len(rcpts) == 0 {
		d.fail(fmt.Errorf("queue: commit %s: no recipients", d.id))
		return d.err
	}
	if err := ctx.Err(); err != nil {
		d.fail(fmt.Errorf("queue: commit %s: %w", d.id, err))
		return d.err
	}
	now := time.Now()
	env := &envelope{
		ID:       d.id,
		From:     from,
		Rcpts:    append([]string(nil), rcpts...),
		Received: now,
		Size:     d.size,
		Next:     now,
		Params:   d.params.Only(rcpts),
		Trace:    d.trace,
	}
	data, err := json.Marshal(env)
	if err != nil {
		d.fail(fmt.Errorf("queue: commit %s: %w", d.id, err))
		return d.err
	}
	// The envelope copy and the committed mark go with the body's fsync.
	err = d.q.markCommitted(d.f, d.id, data)
	if err == nil {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	if err != nil {
		d.fail(fmt.Errorf("queue: commit %s: %w", d.id, err))
		return d.err
	}
	if err := d.q.committer.commit(rec{kind: recAdd, id: d.id, env: data}); err != nil {
		d.fail(fmt.Errorf("queue: commit %s: %w", d.id, err))
		return d.err
	}
	d.done = true
	q := d.q
	q.mu.Lock()
	delete(q.drafts, d.id)
	q.inbox = append(q.inbox, env)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
	q.log.Debug("message queued", zap.String("msg_id", d.id), zap.String("mail_from", from),
		zap.Strings("rcpt", rcpts), zap.Int64("bytes", d.size))
	return nil
}
