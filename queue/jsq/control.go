package jsq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gomta/queue/jsobj"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
	"gomta/session/metrics"
)

const busyNote = " (an attempt is in progress)"

// states reads every message's state, in acceptance order.
func (q *Queue) states(ctx context.Context) ([]*state, error) {
	kl, err := q.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("jsq: list: %w", err)
	}
	defer func() { _ = kl.Stop() }()
	var out []*state
	for k := range kl.Keys() {
		st, _, err := q.get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // done meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *state) int { return a.Received.Compare(b.Received) })
	return out, ctx.Err()
}

// List returns a snapshot of every queued message, in acceptance order.
func (q *Queue) List(ctx context.Context) ([]queue.MessageInfo, error) {
	sts, err := q.states(ctx)
	out := make([]queue.MessageInfo, 0, len(sts))
	for _, st := range sts {
		out = append(out, st.info(false))
	}
	return out, err
}

// Show returns one message with its history of attempts, or queue.ErrUnknown.
func (q *Queue) Show(ctx context.Context, id string) (queue.MessageInfo, error) {
	if !queue.ValidID(id) {
		return queue.MessageInfo{}, queue.ErrUnknown
	}
	st, _, err := q.get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return queue.MessageInfo{}, queue.ErrUnknown
	}
	if err != nil {
		return queue.MessageInfo{}, err
	}
	return st.info(true), nil
}

// Stats counts the queued messages by state.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	sts, err := q.states(ctx)
	var s queue.Stats
	for _, st := range sts {
		s.Messages++
		switch stateOf(st) { // the states the metrics count, by the same rule
		case metrics.StateHeld:
			s.Held++
		case metrics.StateActive:
			s.Active++
		default:
			s.Deferred++
		}
		if s.Oldest.IsZero() || st.Received.Before(s.Oldest) {
			s.Oldest = st.Received
		}
	}
	return s, err
}

// Hold keeps the messages ids from being attempted until released.
func (q *Queue) Hold(ctx context.Context, ids []string) ([]queue.ActionResult, error) {
	return q.act(ctx, ids, false, "message held", func(st *state) (string, bool, bool) {
		if st.Held {
			return "already held", false, false
		}
		st.Held = true
		return "held" + note(st), false, true
	})
}

// Release lets held messages go: each is due at once (published again).
func (q *Queue) Release(ctx context.Context, ids []string) ([]queue.ActionResult, error) {
	return q.act(ctx, ids, false, "message released", func(st *state) (string, bool, bool) {
		if !st.Held {
			return "already released", false, false
		}
		st.Held = false
		st.Next = time.Now()
		return "released" + note(st), st.Node == "", true
	})
}

// Retry makes the messages ids (every message when all is set) due now. A
// held message stays held; one in an attempt is left to it.
func (q *Queue) Retry(ctx context.Context, ids []string, all bool) ([]queue.ActionResult, error) {
	return q.act(ctx, ids, all, "message retry requested", func(st *state) (string, bool, bool) {
		switch {
		case st.Held:
			return "held: not retried (release it to send it)", false, false
		case st.Node != "":
			return "not retried" + busyNote, false, false
		}
		st.Next = time.Now()
		return "due now", true, true
	})
}

func note(st *state) string {
	if st.Node != "" {
		return busyNote
	}
	return ""
}

// act applies f to the state of each id (every message when all is set)
// with a revision check, and publishes the next generation of the stream
// message when f asks for it (due now). f answers what it did in words,
// whether the message is due now, and whether it changed the state: then
// the node that acted logs msg, as the local queue does, so that an
// operator's action is in the log of the node whose mtactl made it.
func (q *Queue) act(ctx context.Context, ids []string, all bool, msg string, f func(*state) (string, bool, bool)) ([]queue.ActionResult, error) {
	if all {
		sts, err := q.states(ctx)
		if err != nil {
			return nil, err
		}
		ids = ids[:0:0]
		for _, st := range sts {
			ids = append(ids, st.ID)
		}
	}
	out := make([]queue.ActionResult, 0, len(ids))
	for _, id := range ids {
		done, changed, err := q.actOne(ctx, id, f)
		out = append(out, queue.ActionResult{ID: id, Done: done, Err: err})
		if err == nil && changed {
			q.log.Info(msg, zap.String("msg_id", id))
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func (q *Queue) actOne(ctx context.Context, id string, f func(*state) (string, bool, bool)) (string, bool, error) {
	if !queue.ValidID(id) {
		return "", false, queue.ErrUnknown
	}
	pub, pubDone := 0, "" // the generation an earlier round published, and its answer
	for range maxTries {
		st, rev, err := q.get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if pub > 0 {
				// Done or dropped after this action published the next
				// generation: that one must not outlive its state (it
				// would be rebuilt and delivered again).
				q.purgeAll(ctx, id)
			}
			return "", false, queue.ErrUnknown
		}
		if err != nil {
			return "", false, err
		}
		if pub > 0 && st.Gen >= pub {
			// An attempt took the new generation before this round's
			// state write: the action is done.
			q.purgeOlder(ctx, id)
			return pubDone, true, nil
		}
		done, due, changed := f(st)
		if due {
			// The next generation first: a state naming a generation that
			// was never published would make the current one stale.
			if pub == 0 {
				if err := q.republish(ctx, id, st.Gen+1); err != nil {
					return "", false, err
				}
				pub, pubDone = st.Gen+1, done
			}
		}
		if pub > 0 {
			// Published in this or an earlier round: the state must name
			// it even when f no longer asks for it (an attempt claimed the
			// message meanwhile), so that nothing outlives the state.
			st.Gen = pub
		}
		if _, err := q.put(ctx, st, rev); err != nil {
			if conflict(err) {
				continue
			}
			return "", false, err
		}
		if due {
			q.purgeOlder(ctx, id)
		}
		return done, changed, nil
	}
	return "", false, fmt.Errorf("jsq: %s: state changed %d times meanwhile, try again", id, maxTries)
}

// purgeOlder removes the generations of id's stream message before the
// newest; one a node holds is acked when it sees the state's newer one.
func (q *Queue) purgeOlder(ctx context.Context, id string) {
	subj := q.msgSubject(id)
	seq, err := q.lastSeq(ctx, subj)
	if err == nil {
		err = q.stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(seq))
	}
	if err != nil {
		q.log.Warn("older queue message not purged", zap.String("msg_id", id), zap.Error(err))
	}
}

// purgeAll removes every generation of id's stream message.
func (q *Queue) purgeAll(ctx context.Context, id string) {
	if err := q.stream.Purge(ctx, jetstream.WithPurgeSubject(q.msgSubject(id))); err != nil {
		q.log.Warn("queue message of a message done not purged", zap.String("msg_id", id), zap.Error(err))
	}
}

// republish publishes generation gen of id's stream message: the same
// envelope and body reference, due at once.
func (q *Queue) republish(ctx context.Context, id string, gen int) error {
	raw, err := q.stream.GetLastMsgForSubject(ctx, q.msgSubject(id))
	if err != nil {
		return fmt.Errorf("jsq: %s: read queue message: %w", id, err)
	}
	h := nats.Header{}
	h.Set(hdrEnvelope, raw.Header.Get(hdrEnvelope))
	h.Set(hdrGen, strconv.Itoa(gen))
	msg := &nats.Msg{Subject: raw.Subject, Header: h, Data: raw.Data}
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id+"."+strconv.Itoa(gen))); err != nil {
		return fmt.Errorf("jsq: %s: publish: %w", id, err)
	}
	return nil
}

// lastSeq is the sequence of the newest stream message on subj.
func (q *Queue) lastSeq(ctx context.Context, subj string) (uint64, error) {
	raw, err := q.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return 0, err
	}
	return raw.Sequence, nil
}

// Drop removes the messages ids (stream message, state, body); with
// bounce, a DSN naming every recipient not done yet is queued first, and
// the message is kept when it cannot be. A bounce needs the Handler, so
// Run must have started on this node.
func (q *Queue) Drop(ctx context.Context, ids []string, bounce bool) ([]queue.ActionResult, error) {
	out := make([]queue.ActionResult, 0, len(ids))
	for _, id := range ids {
		done, err := q.dropOne(ctx, id, bounce)
		out = append(out, queue.ActionResult{ID: id, Done: done, Err: err})
	}
	return out, ctx.Err()
}

func (q *Queue) dropOne(ctx context.Context, id string, bounce bool) (string, error) {
	if !queue.ValidID(id) {
		return "", queue.ErrUnknown
	}
	st, _, err := q.get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", queue.ErrUnknown
	}
	if err != nil {
		return "", err
	}
	done := "dropped"
	if bounce && st.From != "" {
		hp := q.handler.Load()
		if hp == nil {
			return "", errors.New("jsq: no bounce can be written: the queue is not running on this node")
		}
		failed := append([]queue.Failure(nil), st.Failed...)
		for _, r := range st.Rcpts {
			// As the local queue: RFC 3463 5.0.0 (no more specific code
			// fits an operator's decision), with the last reply.
			last := st.Last[r]
			text := "removed from the queue by the postmaster"
			if last.Text != "" {
				text += "; last attempt: " + last.Text
			}
			failed = append(failed, queue.Failure{Rcpt: r, Enhanced: "5.0.0", Text: text, Remote: last.Remote})
		}
		// The report quotes the original's headers (RFC 3462
		// text/rfc822-headers): the Handler reads them from a staged copy.
		path, err := q.stageBody(id)
		if err != nil {
			return "", fmt.Errorf("jsq: %s: bounce not queued, message kept: %w", id, err)
		}
		defer os.Remove(path)
		m := q.message(st, st.Attempts, path)
		bid := queue.ReportID(id, "DROP")
		if err := q.queueReport(ctx, bid, st.From, func(w io.Writer) error { return (*hp).WriteBounce(w, m, failed) }); err != nil {
			return "", fmt.Errorf("jsq: %s: bounce not queued, message kept: %w", id, err)
		}
		done = "dropped, bounce queued to <" + st.From + ">" // the local queue's words
	} else if bounce {
		done = "dropped (null sender: no bounce)"
	}
	if err := q.stream.Purge(ctx, jetstream.WithPurgeSubject(q.msgSubject(id))); err != nil {
		return "", fmt.Errorf("jsq: %s: purge: %w", id, err)
	}
	q.forgetBody(&st.envelope)
	if err := q.kv.Delete(ctx, id); err != nil {
		return "", fmt.Errorf("jsq: %s: state: %w", id, err)
	}
	q.log.Info("message dropped", zap.String("msg_id", id), zap.Bool("bounce", bounce))
	return done + note(st), nil
}

// stageBody copies id's body to a new file under TmpDir and returns its
// name, for a report written outside an attempt.
func (q *Queue) stageBody(id string) (string, error) {
	r, err := q.OpenBody(id)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := os.CreateTemp(q.tmpDir, "drop-"+id+"-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("stage: %w", err)
	}
	return f.Name(), nil
}

// OpenBody opens a queued message's body: the payload of its stream
// message, or its object (queue.ErrUnknown when there is none).
func (q *Queue) OpenBody(id string) (io.ReadCloser, error) {
	if !queue.ValidID(id) {
		return nil, queue.ErrUnknown
	}
	ctx, cancel := opCtx()
	raw, err := q.stream.GetLastMsgForSubject(ctx, q.msgSubject(id))
	if err != nil {
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, queue.ErrUnknown
		}
		return nil, err
	}
	env, _, err := parseHeader(raw.Header)
	if err != nil || !env.Object {
		cancel()
		return io.NopCloser(bytes.NewReader(raw.Data)), err
	}
	r, err := jsobj.Open(ctx, q.js, q.obj, q.objBucket(), id)
	if err != nil {
		cancel()
		return nil, err
	}
	return cancelCloser{r, cancel}, nil
}

// cancelCloser ends the object read's context when the reader is closed.
type cancelCloser struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelCloser) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }
