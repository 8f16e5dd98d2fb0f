package jsq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
)

// bounceRetry is the longest wait before trying again to queue a bounce
// or notice that could not be queued (the local queue's).
const bounceRetry = time.Minute

var errNoResult = errors.New("jsq: no delivery result for recipient")

// settle applies the results of attempt msg to st like the local queue
// (queue/attempt.go): delivered recipients leave (to Succeeded when a
// success notice is due), failed ones (permanently, or on a final attempt
// not cut short by Run's stop, then 5.4.7) are bounced, the others wait;
// the delay notice goes once. It reports whether the message is done.
func (q *Queue) settle(ctx context.Context, h queue.Handler, st *state, msg *queue.Message, res []queue.Result, cut bool, log *zap.Logger) bool {
	if msg.Attempt > st.Attempts { // an attempt was made (not only a bounce to queue)
		got := byRcpt(res)
		st.record(msg, got, cut)
		q.classify(st, msg, got, cut, log)
		st.Attempts = msg.Attempt
		if cut && msg.Final && len(st.Rcpts) > 0 {
			st.Attempts-- // the stop cut the final attempt short: it is made again
		}
	}
	bouncing := st.From != "" && slices.ContainsFunc(st.Failed, func(f queue.Failure) bool { return st.Params.Notifies(f.Rcpt, "FAILURE") })
	if err := q.report(ctx, h, st, "FAILURE", &st.Failed, log); err != nil {
		log.Error("bounce not queued, message kept until it is", zap.Error(err))
	} else if bouncing {
		q.metrics.BounceQueued()
	}
	if err := q.report(ctx, h, st, "SUCCESS", &st.Succeeded, log); err != nil {
		log.Error("success notice not queued, message kept until it is", zap.Error(err))
	}
	q.warnDelay(ctx, h, st, log)
	return len(st.Rcpts) == 0 && len(st.Failed) == 0 && len(st.Succeeded) == 0
}

// report queues one bounce (event FAILURE) or success notice (SUCCESS) for
// the reports in *rs and empties *rs once it is durable; recipients that
// did not ask for it and the null sender get none (logged).
func (q *Queue) report(ctx context.Context, h queue.Handler, st *state, event string, rs *[]queue.Failure, log *zap.Logger) error {
	if event == "FAILURE" {
		*rs = notified(st, *rs, event, "bounce suppressed by NOTIFY", log)
	}
	if len(*rs) == 0 {
		return nil
	}
	if st.From == "" {
		log.Warn("report not sent for a message from the null sender", zap.String("event", event), zap.Int("rcpts", len(*rs)))
		*rs = nil
		return nil
	}
	m := q.message(st, st.Attempts, "")
	list := *rs
	write := func(w io.Writer) error { return h.WriteBounce(w, m, list) }
	what := "bounce queued"
	if event == "SUCCESS" {
		write = func(w io.Writer) error { return h.WriteSuccess(w, m, list) }
		what = "success notice queued"
	}
	id := queue.ReportID(st.ID, fmt.Sprintf("%s/%d", event, st.Attempts))
	if err := q.queueReport(ctx, id, st.From, write); err != nil {
		return fmt.Errorf("jsq: %s: %w", event, err)
	}
	log.Info(what, zap.String("rcpt", st.From), zap.String("bounce_msg_id", id), zap.Int("rcpts", len(list)))
	*rs = nil
	return nil
}

// warnDelay queues st's delay notice once, past DelayWarning, about the
// pending recipients that did not ask otherwise (queue/bounce.go).
func (q *Queue) warnDelay(ctx context.Context, h queue.Handler, st *state, log *zap.Logger) {
	if st.DelayWarned || len(st.Rcpts) == 0 || !q.sched.WarnDue(st.Received, time.Now()) {
		return
	}
	if st.From == "" {
		st.DelayWarned = true
		return
	}
	pending := make([]queue.Failure, len(st.Rcpts))
	for i, r := range st.Rcpts {
		pending[i] = st.Last[r]
		pending[i].Rcpt = r
	}
	if pending = notified(st, pending, "DELAY", "delay notice suppressed by NOTIFY", log); len(pending) == 0 {
		st.DelayWarned = true
		return
	}
	m := q.message(st, st.Attempts, "")
	id := queue.ReportID(st.ID, "DELAY")
	if err := q.queueReport(ctx, id, st.From, func(w io.Writer) error { return h.WriteDelay(w, m, pending) }); err != nil {
		log.Error("delay notice not queued, tried again after the next attempt", zap.Error(err))
		return
	}
	st.DelayWarned = true
	log.Info("delay notice queued", zap.String("rcpt", st.From), zap.String("bounce_msg_id", id), zap.Int("rcpts", len(pending)))
}

// notified keeps the reports whose recipient asked for event.
func notified(st *state, rs []queue.Failure, event, msg string, log *zap.Logger) []queue.Failure {
	var out []queue.Failure
	for _, f := range rs {
		if st.Params.Notifies(f.Rcpt, event) {
			out = append(out, f)
			continue
		}
		log.Info(msg, zap.String("rcpt", f.Rcpt), zap.String("notify", st.Params.Rcpt[f.Rcpt].Notify))
	}
	return out
}

// classify sorts st's pending recipients by their result (queue/attempt.go).
func (q *Queue) classify(st *state, m *queue.Message, got map[string]queue.Result, cut bool, log *zap.Logger) {
	var left []string
	last := make(map[string]queue.Failure)
	for _, rcpt := range st.Rcpts {
		r, ok := got[rcpt]
		if !ok {
			r = queue.Result{Rcpt: rcpt, Err: errNoResult}
		}
		if r.Err == nil {
			if r.Notice != "" && st.Params.Notifies(rcpt, "SUCCESS") {
				st.Succeeded = append(st.Succeeded, queue.Failure{Rcpt: rcpt, Action: r.Notice, Remote: r.Failure.Remote})
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
			last[rcpt] = f
			continue
		}
		if !r.Permanent {
			f.Status = queue.StatusExpired
		}
		log.Info("recipient failed permanently", zap.String("rcpt", rcpt), zap.Int("smtp_code", f.Code),
			zap.String("enhanced", cmp.Or(f.Status, f.Enhanced)), zap.String("error", f.Text), zap.Int("attempt", m.Attempt))
		st.Failed = append(st.Failed, f)
	}
	st.Rcpts, st.Last = left, last
}

// record appends attempt m's results to st's history (the last maxHistory).
func (st *state) record(m *queue.Message, got map[string]queue.Result, cut bool) {
	t := queue.Try{Time: time.Now().UTC(), Attempt: m.Attempt, Results: make([]queue.TryResult, 0, len(st.Rcpts))}
	for _, rcpt := range st.Rcpts {
		r, ok := got[rcpt]
		tr := queue.TryResult{Rcpt: rcpt, Result: queue.TryDelivered}
		switch {
		case !ok:
			tr.Result, tr.Reply = queue.TryDeferred, errNoResult.Error()
		case r.Err != nil:
			tr.Result = queue.TryDeferred
			if r.Permanent || m.Final && !cut {
				tr.Result = queue.TryFailed
			}
			tr.Code, tr.Enhanced, tr.Reply, tr.Remote = r.Failure.Code, r.Failure.Enhanced, cmp.Or(r.Failure.Text, r.Err.Error()), r.Failure.Remote
		}
		t.Results = append(t.Results, tr)
	}
	st.History = append(st.History[max(len(st.History)-(maxHistory-1), 0):], t)
}

func byRcpt(res []queue.Result) map[string]queue.Result {
	got := make(map[string]queue.Result, len(res))
	for _, r := range res {
		if _, dup := got[r.Rcpt]; !dup {
			got[r.Rcpt] = r
		}
	}
	return got
}

// finish saves st after an attempt (merging a control action that came
// meanwhile: hold, or a newer generation) and settles m: acked when the
// message is done (its state and body then deleted), dropped or superseded;
// else nak'd until the next attempt (at once when Run's stop cut it short).
func (q *Queue) finish(ctx context.Context, m jetstream.Msg, st *state, rev uint64, gen int, done, cut bool, log *zap.Logger) {
	if done {
		if err := m.DoubleAck(ctx); err != nil {
			log.Warn("delivered message not acknowledged, kept as done until it is", zap.Error(err))
			q.markDone(ctx, st, rev, log)
			return
		}
		q.forgetDone(ctx, st, rev, log)
		log.Info("message done", zap.Int("attempt", st.Attempts),
			zap.Int64("duration_ms", time.Since(st.Received).Milliseconds()))
		return
	}
	now := time.Now()
	switch {
	case cut && len(st.Rcpts) > 0:
		st.Next = now
	case len(st.Rcpts) > 0:
		st.Next = q.sched.Next(st.Received, st.Attempts, now)
	default:
		st.Next = now.Add(min(q.sched.Wait(1), bounceRetry))
	}
	st.Node = ""
	saved := false
	for range maxTries {
		_, err := q.put(ctx, st, rev)
		if saved = err == nil; saved {
			break
		}
		cur, crev, gerr := q.get(ctx, st.ID)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) { // dropped meanwhile
			_ = m.Ack()
			return
		}
		if !conflict(err) || gerr != nil {
			log.Error("queue state not saved, the attempt will be made again", zap.Error(errors.Join(err, gerr)))
			_ = m.NakWithDelay(busyWait)
			return
		}
		if cur.Node != q.node || cur.Claim != st.Claim {
			// This attempt was too slow (AckWait passed without progress)
			// and a redelivery claimed the message: its result is newer
			// than this one, which is dropped, and m is the other
			// delivery's to settle now.
			log.Warn("attempt result dropped, the message was taken over", zap.String("other_node", cur.Node))
			return
		}
		st.Held, st.Gen, rev = cur.Held, cur.Gen, crev
	}
	if !saved { // contended every time: the outcome is not kept, so redo it soon
		log.Error("queue state not saved, the attempt will be made again")
		_ = m.NakWithDelay(busyWait)
		return
	}
	if gen < st.Gen { // released or retried meanwhile: the newer message goes on
		_ = m.Ack()
		return
	}
	if len(st.Rcpts) > 0 {
		log.Info("retry scheduled", zap.Int("attempt", st.Attempts), zap.Time("next_attempt", st.Next),
			zap.Strings("rcpt", st.Rcpts), zap.String("error", st.Last[st.Rcpts[0]].Text))
	} else {
		log.Info("bounce retry scheduled", zap.Time("next_attempt", st.Next))
	}
	delay := max(time.Until(st.Next), 0)
	if st.Held {
		delay = heldWait
	}
	if err := m.NakWithDelay(delay); err != nil {
		log.Warn("nak not sent, redelivered after the ack wait", zap.Error(err))
	}
}

// forget deletes the body and state of a message whose stream message is
// acked (or purged).
func (q *Queue) forget(ctx context.Context, st *state, log *zap.Logger) {
	q.forgetBody(&st.envelope)
	if err := q.kv.Delete(ctx, st.ID); err != nil {
		log.Warn("queue state not deleted", zap.Error(err))
	}
}

// forgetDone deletes the state and body of a message done whose stream
// message was acked. The state is deleted at the revision the attempt
// claimed only: a control action that changed it meanwhile may have
// published a newer generation of the stream message, which must go before
// the body does (else it would be made into a state again, its body gone).
func (q *Queue) forgetDone(ctx context.Context, st *state, rev uint64, log *zap.Logger) {
	err := q.kv.Delete(ctx, st.ID, jetstream.LastRevision(rev))
	if err == nil {
		q.forgetBody(&st.envelope)
		return
	}
	if !conflict(err) {
		log.Warn("queue state not deleted", zap.Error(err))
		return
	}
	if err := q.stream.Purge(ctx, jetstream.WithPurgeSubject(q.msgSubject(st.ID))); err != nil {
		log.Warn("newer queue message of a message done not purged", zap.Error(err))
		q.markDone(ctx, st, rev, log) // its delivery then only acks it
		return
	}
	q.forget(ctx, st, log)
}

// markDone keeps the state of a message done whose ack failed as a done
// marker (body kept), so that its redelivery is acked unattempted instead
// of rebuilt and delivered to every recipient again. The marker wins over
// whatever another node wrote meanwhile: every recipient is done. When the
// ack landed after all (the stream message is gone), nothing is kept.
func (q *Queue) markDone(ctx context.Context, st *state, rev uint64, log *zap.Logger) {
	st.Done, st.Node = true, ""
	for range maxTries {
		_, err := q.put(ctx, st, rev)
		if err == nil {
			break
		}
		cur, crev, gerr := q.get(ctx, st.ID)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return // dropped, or done by another node meanwhile
		}
		if !conflict(err) || gerr != nil {
			log.Error("done marker not saved, the message may be delivered again", zap.Error(errors.Join(err, gerr)))
			return
		}
		st.Gen, rev = max(st.Gen, cur.Gen), crev
	}
	if _, err := q.lastSeq(ctx, q.msgSubject(st.ID)); errors.Is(err, jetstream.ErrMsgNotFound) {
		q.forget(ctx, st, log) // only the ack's answer was lost
	}
}
