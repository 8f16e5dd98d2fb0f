package jsq

import (
	"context"
	"errors"
	"fmt"
	"gomta/queue/jsobj"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
)

const (
	// fetchWait is how long one pull waits for a message: the longest a
	// worker takes to notice that Run's ctx ended.
	fetchWait = time.Second
	// heldWait is the nak delay of a held message: it is not attempted,
	// and Release publishes it again, due at once, anyway.
	heldWait = time.Hour
	// commitGrace is how long a first delivery without a state waits for
	// the committing node to create it, before the state is made from the
	// envelope (that node died between its publish and its state).
	commitGrace = 5 * time.Second
	// busyWait is the nak delay when the state could not be claimed or the
	// body not staged: a passing fault, tried again soon.
	busyWait = 2 * time.Second
	// maxEarly is how many deliveries of a generation newer than the
	// state's wait for the state write of the action that published it;
	// then that generation is taken as the state's (the writer failed).
	maxEarly = 10
	// stageRate is the slowest body read from the object store an attempt
	// waits for, in bytes per second, beyond Queue.stageBase (opTimeout).
	stageRate = 1 << 20
)

// Run delivers through h on Workers goroutines until ctx ends, then waits
// for the attempts in progress: each is settled, or its message nak'd.
func (q *Queue) Run(ctx context.Context, h queue.Handler) error {
	q.handler.Store(&h)
	var wg sync.WaitGroup
	wg.Go(func() { q.gauges(ctx) })
	for range q.workers {
		wg.Go(func() { q.worker(ctx, h) })
	}
	wg.Go(func() { q.sweeper(ctx) })
	wg.Wait()
	return nil
}

// worker pulls one message at a time from the shared consumer and attempts it.
func (q *Queue) worker(ctx context.Context, h queue.Handler) {
	for ctx.Err() == nil {
		m, err := q.cons.Next(jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
				if q.fetchWarn.allow(time.Now()) {
					q.log.Warn("queue fetch failed", zap.Error(err))
				}
				select { // a server away: do not spin
				case <-ctx.Done():
				case <-time.After(fetchWait):
				}
			}
			continue
		}
		q.handle(ctx, h, m)
	}
}

// handle is one delivery of a stream message: claim its state, attempt
// it, settle. Panics become a nak so that another try is made.
func (q *Queue) handle(ctx context.Context, h queue.Handler, m jetstream.Msg) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery attempt", zap.Any("error", p), zap.Stack("stack"))
			_ = m.NakWithDelay(busyWait)
		}
	}()
	if ctx.Err() != nil {
		_ = m.Nak() // fetched as Run stopped: another node takes it now
		return
	}
	env, gen, err := parseHeader(m.Headers())
	if err != nil {
		// Contract 7: never deleted; kept (pending) and visible in the log.
		q.log.Error("damaged queue message kept", zap.Error(err))
		_ = m.NakWithDelay(heldWait)
		return
	}
	log := q.log.With(zap.String("msg_id", env.ID))
	st, rev, ok := q.claim(ctx, m, env, gen, log)
	if !ok {
		return
	}
	q.attempt(ctx, h, m, st, rev, gen, log)
}

// claim reads (or, for a message whose committing node died, creates) the
// state and marks it as this node's attempt. It settles m itself and
// returns false when there is nothing to attempt: a stale generation, a
// held message, a state still being written.
func (q *Queue) claim(ctx context.Context, m jetstream.Msg, env envelope, gen int, log *zap.Logger) (*state, uint64, bool) {
	for range maxTries {
		st, rev, err := q.get(ctx, env.ID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if md, merr := m.Metadata(); merr == nil && md.NumDelivered == 1 && time.Since(md.Timestamp) < commitGrace {
				_ = m.NakWithDelay(busyWait / 4)
				return nil, 0, false
			}
			st, rev = newState(env), 0
		} else if err != nil {
			log.Warn("queue state not read", zap.Error(err))
			_ = m.NakWithDelay(busyWait)
			return nil, 0, false
		}
		md, _ := m.Metadata()
		switch {
		case gen < st.Gen: // Release or Retry published a newer one
			_ = m.Ack()
			return nil, 0, false
		case gen > st.Gen && md != nil && md.NumDelivered <= maxEarly:
			// Published by a Release or Retry whose state write is still
			// to come (it may yet clear Held): wait for it, a few times.
			_ = m.NakWithDelay(busyWait / 4)
			return nil, 0, false
		case st.Done: // attempted to the end, only its ack failed
			if err := m.DoubleAck(ctx); err == nil {
				q.forget(ctx, st, log)
				log.Info("message done", zap.Int("attempt", st.Attempts))
			}
			return nil, 0, false
		case st.Held:
			_ = m.NakWithDelay(heldWait)
			return nil, 0, false
		}
		st.Gen, st.Node, st.Claim = gen, q.node, 0
		if md != nil {
			st.Claim = md.NumDelivered
		}
		nrev, err := q.put(ctx, st, rev)
		if err == nil {
			return st, nrev, true
		}
		if !conflict(err) {
			log.Warn("queue state not claimed", zap.Error(err))
			_ = m.NakWithDelay(busyWait)
			return nil, 0, false
		}
	}
	_ = m.NakWithDelay(busyWait)
	return nil, 0, false
}

// attempt stages the body, calls h (signalling progress every AckWait/3),
// settles the outcome and acks or naks m.
func (q *Queue) attempt(ctx context.Context, h queue.Handler, m jetstream.Msg, st *state, rev uint64, gen int, log *zap.Logger) {
	var res []queue.Result
	n := st.Attempts
	msg := q.message(st, n, "") // only a bounce or notice is left to queue
	if len(st.Rcpts) > 0 {
		n++
		stop := q.progress(m) // staging a big body takes time too
		defer stop()
		path, err := q.stage(ctx, m, &st.envelope)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			msg = q.message(st, n, "")
			res = q.bodyMissing(st, msg, log)
		case err != nil:
			log.Warn("body not staged for the attempt", zap.Error(err))
			st.Node = ""
			octx, cancel := opCtx()
			_, _ = q.put(octx, st, rev)
			cancel()
			_ = m.NakWithDelay(busyWait)
			return
		default:
			defer os.Remove(path)
			msg = q.message(st, n, path)
			log.Debug("delivery attempt", zap.Int("attempt", n), zap.Strings("rcpt", st.Rcpts), zap.Bool("final", msg.Final))
			res = q.deliver(ctx, h, msg)
		}
		stop()
	}
	cut := ctx.Err() != nil
	octx, cancel := opCtx()
	defer cancel()
	done := q.settle(octx, h, st, msg, res, cut, log)
	q.finish(octx, m, st, rev, gen, done, cut, log)
}

// bodyMissingText is the reason a message whose body object is gone shows
// in the queue list and its history.
const bodyMissingText = "message body missing from the queue's object store (damaged)"

// bodyMissing is attempt msg's result when st's body object is gone: damage
// (contract 7), logged once and kept visible, never deleted. The attempt
// counts as a temporary failure of every recipient, so the message waits
// on the retry schedule (not in a tight loop) and, past MaxLifetime, its
// final attempt bounces it (5.4.7) like any undeliverable message.
func (q *Queue) bodyMissing(st *state, msg *queue.Message, log *zap.Logger) []queue.Result {
	if len(st.Rcpts) > 0 && st.Last[st.Rcpts[0]].Text != bodyMissingText {
		log.Error("queue message body missing, kept and retried on schedule", zap.Int("attempt", msg.Attempt),
			zap.Bool("final", msg.Final))
	}
	res := make([]queue.Result, len(msg.Rcpts))
	for i, r := range msg.Rcpts {
		res[i] = queue.Result{Rcpt: r, Err: errors.New(bodyMissingText),
			Failure: queue.Failure{Enhanced: "4.3.0", Text: bodyMissingText}}
	}
	return res
}

// stage writes the body of env to a new file under TmpDir (the Handler
// reads Message.BodyPath) and returns its name.
func (q *Queue) stage(ctx context.Context, m jetstream.Msg, env *envelope) (string, error) {
	// Bounded: a read from a cluster without quorum (or a server that
	// stopped answering) must end, the attempt then made again later.
	ctx, cancel := context.WithTimeout(ctx, q.stageBase+time.Duration(env.Size/stageRate)*time.Second)
	defer cancel()
	f, err := os.CreateTemp(q.tmpDir, "attempt-"+env.ID+"-*")
	if err != nil {
		return "", err
	}
	if env.Object {
		var r io.ReadCloser
		if r, err = jsobj.Open(ctx, q.js, q.obj, q.objBucket(), env.ID); err == nil {
			_, err = io.Copy(f, r)
			_ = r.Close()
		}
	} else {
		_, err = f.Write(m.Data())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("jsq: stage %s: %w", env.ID, err)
	}
	return f.Name(), nil
}

// message is the Message handed to a Handler for attempt n of st.
func (q *Queue) message(st *state, n int, path string) *queue.Message {
	return &queue.Message{ID: st.ID, From: st.From, Rcpts: append([]string(nil), st.Rcpts...),
		Received: st.Received, Attempt: n, Final: q.sched.Final(st.Received, n, time.Now()),
		Expires: q.sched.Expires(st.Received), BodyPath: path, Size: st.Size, DSN: st.Params}
}

// progress tells JetStream every AckWait/3 that the attempt on m is alive,
// until the returned stop is called (any number of times).
func (q *Queue) progress(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(q.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// deliver calls h, turning a panic into a temporary failure of every
// recipient.
func (q *Queue) deliver(ctx context.Context, h queue.Handler, msg *queue.Message) (res []queue.Result) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery handler", zap.String("msg_id", msg.ID), zap.Any("error", p), zap.Stack("stack"))
			err := fmt.Errorf("jsq: delivery handler panicked: %v", p)
			res = make([]queue.Result, len(msg.Rcpts))
			for i, r := range msg.Rcpts {
				res[i] = queue.Result{Rcpt: r, Err: err}
			}
		}
	}()
	return h.Deliver(ctx, msg)
}

// fetchWarnEvery is how often a node says that its workers cannot fetch:
// every worker fails at once (a node starting before its consumer is
// reachable, a cluster without quorum), once a fetchWait each.
const fetchWarnEvery = 30 * time.Second

// rateGate lets one event through per fetchWarnEvery.
type rateGate struct {
	mu   sync.Mutex
	last time.Time
}

func (g *rateGate) allow(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.last.IsZero() && now.Sub(g.last) < fetchWarnEvery {
		return false
	}
	g.last = now
	return true
}
