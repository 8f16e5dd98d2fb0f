package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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
	f    *os.File // msg/<id>, written through: the session already writes in 32 KiB chunks
	size int64
	err  error // first write error; the draft is already thrown away
	done bool
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
	f, err := openFile(q.bodyPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, modeDraft)
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

// Commit makes the message and its envelope durable (DESIGN.md contract 1)
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
	if err := d.q.gc.commit(d.id, data); err != nil {
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

// committer is the group commit: whoever arrives while no batch is in
// progress leads; everyone arriving meanwhile waits in pending; when a batch
// is done its leader hands the lead to the first waiter, which commits all
// the waiters in one batch. A batch costs one fsync of msg/, one write(2)
// and one fdatasync of the journal whatever its size. (The bodies are
// fsync'd by each session before it joins, in parallel.)
type committer struct {
	q       *Queue
	mu      sync.Mutex
	pending []*commitReq
	busy    bool
	batches int64 // batches run, under mu (measured by the benchmark)
	solo    bool  // no grouping: every commit is its own batch (benchmark baseline)
}

type commitReq struct {
	id  string
	env []byte       // JSON envelope for the add record
	ch  chan verdict // buffered 1
}

type verdict struct {
	lead bool // take the lead instead of a result
	err  error
}

// commit appends the add record of a body already fsync'd in msg/ and
// returns once the body's directory entry and the record are durable.
func (c *committer) commit(id string, env []byte) error {
	r := &commitReq{id: id, env: env, ch: make(chan verdict, 1)}
	if c.solo {
		c.mu.Lock()
		c.batches++
		c.mu.Unlock()
		c.run([]*commitReq{r})
		return (<-r.ch).err
	}
	c.mu.Lock()
	c.pending = append(c.pending, r)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	if !lead {
		if v := <-r.ch; !v.lead {
			return v.err
		}
	}
	c.mu.Lock()
	batch := c.pending
	c.pending = nil
	c.batches++
	c.mu.Unlock()

	c.run(batch) // answers r too

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		c.mu.Unlock()
		next.ch <- verdict{lead: true}
	} else {
		c.busy = false
		c.mu.Unlock()
	}
	return (<-r.ch).err
}

// run commits one batch and answers every request in it.
func (c *committer) run(batch []*commitReq) {
	q := c.q
	var syncErr error
	func() {
		defer func() {
			if p := recover(); p != nil {
				q.log.Error("panic in group commit", zap.Any("error", p), zap.Stack("stack"))
				syncErr = fmt.Errorf("queue: panic in group commit: %v", p)
			}
		}()
		recs := make([]rec, len(batch))
		for i, r := range batch {
			recs[i] = rec{kind: recAdd, id: r.id, env: r.env}
		}
		// Bodies first: an add record is never durable before its body's
		// directory entry.
		if err := syncDir(q.msgDir); err != nil {
			syncErr = err
			return
		}
		off, err := q.j.append(recs...)
		if err != nil {
			syncErr = err
			return
		}
		if err := q.j.syncTo(off); err != nil {
			syncErr = err
			// The Commits fail and their bodies go: take the records back
			// (best effort; at load an add without its body is dropped).
			undo := make([]rec, len(recs))
			for i, r := range recs {
				undo[i] = rec{kind: recDone, id: r.id}
			}
			_, _ = q.j.append(undo...)
		}
	}()
	for _, r := range batch {
		r.ch <- verdict{err: syncErr}
	}
}
