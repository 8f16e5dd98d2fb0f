package jsq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
)

// headerRoom is what a stream message keeps of the server's max payload
// for its headers beyond the envelope (the protocol's own, Nats-Msg-Id).
const headerRoom = 1024

// inlineMax is the largest body kept as the stream message's payload: one
// larger goes to the object store even when the server's max payload (up
// to 8 MiB) would take it, since a payload is held whole in memory at
// commit and at every attempt, and the object store streams.
const inlineMax = 256 << 10

var errDone = errors.New("jsq: message already committed or aborted")

// Writer is one message being received: staged in TmpDir as it streams in
// (not fsync'd: durability comes from JetStream), published at Commit.
type Writer struct {
	q      *Queue
	id     string
	f      *os.File
	size   int64
	params queue.Params
	err    error
	done   bool
}

// NewMessage starts a message; queue.ErrFull when the queue holds
// MaxMessages (the stream's count, cached briefly).
func (q *Queue) NewMessage(ctx context.Context) (queue.Writer, error) {
	return q.newWriter(ctx, "")
}

// newWriter starts a message with a new id, or a report (bounce or notice)
// with reportID: a report is never refused for being over MaxMessages, the
// message it reports on waits for it.
func (q *Queue) newWriter(ctx context.Context, reportID string) (*Writer, error) {
	if reportID == "" && q.max >= 0 {
		n, err := q.streamCount(ctx)
		if err != nil {
			return nil, err
		}
		if n+q.drafts.Load() >= q.max {
			return nil, queue.ErrFull
		}
	}
	id := reportID
	if id == "" {
		id = queue.NewID(uint16(q.seq.Add(1)))
	}
	f, err := os.CreateTemp(q.tmpDir, "draft-"+id+"-*")
	if err != nil {
		return nil, fmt.Errorf("jsq: draft: %w", err)
	}
	q.drafts.Add(1)
	return &Writer{q: q, id: id, f: f}, nil
}

// ID is the message's msg_id.
func (w *Writer) ID() string { return w.id }

// SetParams records the sender's DSN parameters, stored at Commit.
func (w *Writer) SetParams(p queue.Params) { w.params = p }

// Write appends to the staged body.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errDone
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		w.fail(fmt.Errorf("jsq: draft %s: %w", w.id, err))
	}
	return n, err
}

// fail keeps err and throws the draft away.
func (w *Writer) fail(err error) {
	w.err = err
	w.discard()
}

// discard removes the staged body once.
func (w *Writer) discard() {
	if w.done {
		return
	}
	w.done = true
	w.q.drafts.Add(-1)
	if w.f != nil {
		name := w.f.Name()
		_ = w.f.Close()
		_ = os.Remove(name)
		w.f = nil
	}
}

// Abort throws the message away. It does nothing after Commit.
func (w *Writer) Abort() { w.discard() }

// Commit publishes the message (body inline, or in the object store when it
// is too big for a payload) and creates its state; it returns nil only once
// JetStream acknowledged both. The staged body is gone either way.
//
// On error (no quorum, a lost ack, ctx ended) the client is answered 4xx,
// but the message may still be queued: when the publish's outcome is
// unknown, or the stream message could not be removed after its state
// failed, the stream message and its body are both kept (never one
// without the other). Such a message is delivered like any other, its
// state rebuilt from the envelope after commitGrace: at-least-once, so
// the client's retry may make a second copy (contract 1). When the publish
// surely failed, or its message was surely removed again, nothing of the
// message is left but, at worst, a body object no stream message names,
// deleted by Run's sweep after the de-duplication window.
func (w *Writer) Commit(ctx context.Context, from string, rcpts []string) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errDone
	}
	if len(rcpts) == 0 {
		w.fail(fmt.Errorf("jsq: commit %s: no recipients", w.id))
		return w.err
	}
	start := time.Now()
	env := envelope{ID: w.id, From: from, Rcpts: append([]string(nil), rcpts...),
		Received: start.UTC(), Size: w.size, Params: w.params.Only(rcpts)}
	if err := w.q.publishNew(ctx, &env, w.f); err != nil {
		w.fail(fmt.Errorf("jsq: commit %s: %w", w.id, err))
		return w.err
	}
	w.discard()
	w.q.metrics.Committed(1, time.Since(start))
	w.q.log.Debug("message queued", zap.String("msg_id", w.id), zap.String("mail_from", from),
		zap.Strings("rcpt", rcpts), zap.Int64("bytes", env.Size))
	return nil
}

// publishNew stores the body read from f, publishes env's first stream
// message and creates its state. When the state cannot be created the
// stream message is purged again (and then the body too), so that an error
// answered to the client (451) leaves nothing to deliver; when the outcome
// of the publish or of that purge is unknown, the body is kept, since a
// stream message naming it may be stored (Commit).
func (q *Queue) publishNew(ctx context.Context, env *envelope, f *os.File) error {
	data, err := q.storeBody(ctx, env, f)
	if err != nil {
		return err
	}
	h, err := env.header(0)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: q.msgSubject(env.ID), Header: h, Data: data}
	ack, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(env.ID))
	if err != nil {
		// A timeout or an election may have lost only the ack.
		q.log.Warn("queue message publish outcome unknown, body kept", zap.String("msg_id", env.ID), zap.Error(err))
		return fmt.Errorf("publish: %w", err)
	}
	if ack.Duplicate && !q.stillQueued(ctx, env) {
		return nil // published and done before: nothing more to make
	}
	// A fast attempt on another node may have created the state from the
	// stream message already: that is the same state.
	if _, err := q.put(ctx, newState(*env), 0); err != nil && !conflict(err) {
		cctx, cancel := opCtx()
		defer cancel()
		if perr := q.stream.Purge(cctx, jetstream.WithPurgeSubject(q.msgSubject(env.ID))); perr != nil {
			q.log.Warn("queue message kept after its state failed, delivered after the commit grace",
				zap.String("msg_id", env.ID), zap.Error(perr))
			return fmt.Errorf("state: %w", err)
		}
		q.forgetBody(env)
		_ = q.kv.Delete(cctx, env.ID) // the create's ack may be all that was lost
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// stillQueued reports, for a publish JetStream found to be a duplicate
// (a retried commit, or a report queued again by a redone attempt),
// whether the stream message published before is still there. When it is
// gone (delivered and done within the de-duplication window) the body
// object this publish stored names nothing and is deleted; when that
// cannot be known, false too: a stream message left without state gets
// one from its envelope after commitGrace.
func (q *Queue) stillQueued(ctx context.Context, env *envelope) bool {
	_, err := q.stream.GetLastMsgForSubject(ctx, q.msgSubject(env.ID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		q.forgetBody(env)
		return false
	}
	return err == nil
}

// storeBody reads env's body from f: the returned payload when it fits
// inline, else streamed into the object <id> (env.Object set) and nil.
func (q *Queue) storeBody(ctx context.Context, env *envelope, f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	hdrProbe, err := env.header(0)
	if err != nil {
		return nil, err
	}
	limit := min(q.js.Conn().MaxPayload()-int64(len(hdrProbe.Get(hdrEnvelope)))-headerRoom, inlineMax)
	if env.Size <= limit {
		return io.ReadAll(io.LimitReader(f, env.Size))
	}
	env.Object = true
	// Streamed in chunks: a 50 MiB body needs no 50 MiB of memory.
	// Chunks are stream messages too: under the max payload.
	meta := jetstream.ObjectMeta{Name: env.ID, Opts: &jetstream.ObjectMetaOptions{
		ChunkSize: uint32(min(128<<10, q.js.Conn().MaxPayload()-headerRoom))}}
	if _, err := q.obj.Put(ctx, meta, bufio.NewReaderSize(f, 64<<10)); err != nil {
		return nil, fmt.Errorf("body object: %w", err)
	}
	return nil, nil
}

// forgetBody deletes env's body object, if it has one (best effort: an
// object left behind is only space).
func (q *Queue) forgetBody(env *envelope) {
	if !env.Object {
		return
	}
	ctx, cancel := opCtx()
	defer cancel()
	if err := q.obj.Delete(ctx, env.ID); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		q.log.Warn("body object not deleted", zap.String("msg_id", env.ID), zap.Error(err))
	}
}

// queueReport commits a report written by write as message id (reportID),
// from the null sender to rcpt, with room beyond MaxMessages. The id is
// derived from what is reported, so that the same report queued again (an
// attempt redone after its state failed to save, a publish whose ack was
// lost) is de-duplicated by JetStream instead of sent twice.
func (q *Queue) queueReport(ctx context.Context, id, rcpt string, write func(io.Writer) error) error {
	w, err := q.newWriter(ctx, id)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	if err = write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("write: %w", err)
	}
	return w.Commit(ctx, "", []string{rcpt})
}
