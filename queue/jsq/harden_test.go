package jsq

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
	"gomta/queue"
)

// TestCountWithoutQuorum: when the stream's count cannot be had (a server
// that never answers, as without quorum), every NewMessage gets its error
// within a bounded time, from one request shared by all of them, even
// with a ctx without deadline (a session's).
func TestCountWithoutQuorum(t *testing.T) {
	s := server(t)
	var calls atomic.Int32
	f := &faultJS{JetStream: s.JS}
	q := openQ(t, f, "n1", func(o *Options) { o.MaxMessages = 10 })
	f.info = func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done() // no answer until the caller gives up
		return ctx.Err()
	}
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() {
			w, err := q.NewMessage(context.Background())
			if err == nil {
				w.Abort()
			}
			errs <- err
		}()
	}
	for i := range n {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatalf("NewMessage %d succeeded without a count", i)
			}
		case <-time.After(mtatest.Deadline):
			t.Fatalf("NewMessage %d still waiting for the count", i)
		}
	}
	// Callers that came while a request was in flight, or while its error
	// was cached, made none of their own.
	if c := calls.Load(); c >= n {
		t.Fatalf("%d stream info requests for %d sessions", c, n)
	}
}

// TestCommitLostAck: a commit whose publish was stored but whose ack was
// lost (a timeout, a leader election) answers an error, yet keeps the body
// object the stored stream message names: the message is delivered whole
// once, after the commit grace, instead of failing to stage for ever.
func TestCommitLostAck(t *testing.T) {
	s := natstest.Start(t, 64<<10)
	var n atomic.Int32
	f := &faultJS{JetStream: s.JS}
	f.publish = func(ctx context.Context, m *nats.Msg, next func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
		a, err := next()
		if err == nil && n.Add(1) == 1 {
			return nil, context.DeadlineExceeded
		}
		return a, err
	}
	q := openQ(t, f, "n1", nil)
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 1<<20)
	w, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, "a@example.org", []string{"b@example.org"}); err == nil {
		t.Fatal("commit succeeded: want the lost ack as an error (451)")
	}
	h := newHandler(nil)
	run(t, q, h)
	got := h.next(t)
	if got.ID != w.ID() || !bytes.Equal(got.Body, body) {
		t.Fatalf("delivered %s with %d bytes; want %s with its %d", got.ID, len(got.Body), w.ID(), len(body))
	}
	waitGone(t, q, w.ID())
}

// failAck fails the first DoubleAck of a consumer's messages: after acking
// (only the answer lost) or without.
type failAck struct {
	jetstream.Msg
	n    *atomic.Int32
	lost bool
}

func (m failAck) DoubleAck(ctx context.Context) error {
	if m.n.Add(1) != 1 {
		return m.Msg.DoubleAck(ctx)
	}
	if m.lost {
		_ = m.Msg.DoubleAck(ctx)
	}
	return context.DeadlineExceeded
}

// TestDoneAckFails: a message delivered to every recipient whose ack fails
// is acked at its redelivery without a second delivery, and leaves no state.
func TestDoneAckFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost bool
	}{{"ack not made", false}, {"only the answer lost", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			var n atomic.Int32
			f := &faultJS{JetStream: s.JS, msg: func(m jetstream.Msg) jetstream.Msg { return failAck{m, &n, tc.lost} }}
			q := openQ(t, f, "n1", func(o *Options) { o.AckWait = time.Second })
			id := commit(t, q, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte("body"))
			h := newHandler(nil)
			run(t, q, h)
			if got := h.next(t); got.ID != id {
				t.Fatalf("delivered %s, want %s", got.ID, id)
			}
			waitGone(t, q, id) // the stream message too: its redelivery was acked
			if len(h.seen) != 0 {
				t.Fatalf("delivered again after a failed ack: %+v", (<-h.seen).Message)
			}
		})
	}
}

// TestBodyObjectMissing: a message whose body object is gone is damage:
// kept, visible with the reason, its attempts counted on the retry
// schedule, and bounced past MaxLifetime (not retried every 2 s for ever).
func TestBodyObjectMissing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
	}{{"kept with the reason", time.Hour}, {"bounced past lifetime", 1500 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t, 64<<10)
			q := openQ(t, s.JS, "n1", func(o *Options) {
				o.Retry = slices.Repeat([]time.Duration{200 * time.Millisecond}, 100)
				o.MaxLifetime = tc.lifetime
			})
			ctx := context.Background()
			id := commit(t, q, "a@example.org", []string{"b@example.org"}, bytes.Repeat([]byte("x"), 256<<10))
			if err := q.obj.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			h := newHandler(nil)
			run(t, q, h)
			if tc.lifetime == time.Hour {
				mtatest.Eventually(t, "two attempts counted with the reason", func() bool {
					mi, err := q.Show(ctx, id)
					return err == nil && mi.Attempts >= 2 && len(mi.Recipients) == 1 &&
						strings.Contains(mi.Recipients[0].LastReply, "body missing")
				})
				return
			}
			b := h.next(t)
			if b.From != "" || !strings.Contains(string(b.Body), "status=5.4.7") {
				t.Fatalf("got from %q %q; want the bounce of %s with 5.4.7", b.From, b.Body, id)
			}
			waitGone(t, q, id)
		})
	}
}

// TestRedoneAttemptBouncesOnce: an attempt whose state save fails after it
// queued its bounce is made again; the bounce it queues again is the same
// (de-duplicated), so the sender gets one.
func TestRedoneAttemptBouncesOnce(t *testing.T) {
	s := server(t)
	var target atomic.Pointer[string]
	var updates atomic.Int32
	f := &faultJS{JetStream: s.JS}
	f.update = func(key string, _ []byte) error {
		// The claim is the first update of the message's state, the save
		// after the attempt its second.
		if id := target.Load(); id != nil && key == *id && updates.Add(1) == 2 {
			return errors.New("injected: no quorum")
		}
		return nil
	}
	q := openQ(t, f, "n1", nil)
	id := commit(t, q, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte("body"))
	target.Store(&id)
	h := newHandler(func(m *queue.Message) []queue.Result {
		switch {
		case m.From == "": // the bounce
			return results(m, nil, false)
		case m.Attempt == 1: // b bounced, c to try again
			return []queue.Result{{Rcpt: "b@example.org", Err: errors.New("no such user"), Permanent: true,
				Failure: queue.Failure{Code: 550, Enhanced: "5.1.1", Text: "no such user"}},
				{Rcpt: "c@example.org", Err: errTemp}}
		}
		return results(m, nil, false)
	})
	run(t, q, h)
	waitGone(t, q, id)
	if n := updates.Load(); n < 3 {
		t.Fatalf("%d updates of the state: the attempt was not made again", n)
	}
	ctx := context.Background()
	mtatest.Eventually(t, "queue empty", func() bool {
		info, err := q.stream.Info(ctx)
		list, lerr := q.List(ctx)
		return err == nil && lerr == nil && info.State.Msgs == 0 && len(list) == 0
	})
	var attempts, bounces int
	for len(h.seen) > 0 {
		if m := <-h.seen; m.From == "" {
			bounces++
		} else {
			attempts++
		}
	}
	if attempts != 3 || bounces != 1 {
		t.Fatalf("%d attempts and %d bounces; want 3 attempts (the first redone) and 1 bounce", attempts, bounces)
	}
}

// noProgress keeps a message's attempt from signalling progress: the node
// holding it looks dead to JetStream (slow, or cut off).
type noProgress struct{ jetstream.Msg }

func (noProgress) InProgress() error { return nil }

// TestLateResultDropped: a node whose attempt outlived AckWait (no progress
// signalled) finishes after another node took the message over and saved
// its result: the late result is dropped, not merged over the newer one,
// so a recipient the other node delivered is not made pending again.
func TestLateResultDropped(t *testing.T) {
	s := server(t)
	fa := &faultJS{JetStream: s.JS, msg: func(m jetstream.Msg) jetstream.Msg { return noProgress{m} }}
	core, logs := observer.New(zap.WarnLevel)
	one := func(o *Options) { o.Workers = 1; o.AckWait = time.Second }
	a := openQ(t, fa, "a", func(o *Options) { one(o); o.Logger = zap.New(core) })
	b := openQ(t, s.JS, "b", func(o *Options) { one(o); o.Retry = []time.Duration{time.Second, time.Second} })
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHandler(func(m *queue.Message) []queue.Result {
		switch calls.Add(1) {
		case 1: // a: too slow
			close(entered)
			select {
			case <-release:
			case <-time.After(mtatest.Deadline):
			}
			return results(m, errTemp, false)
		case 2: // b, after the ack wait: b delivered, c to try again
			return []queue.Result{{Rcpt: "b@example.org"}, {Rcpt: "c@example.org", Err: errTemp}}
		}
		return results(m, nil, false)
	})
	id := commit(t, a, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte("body"))
	run(t, a, h)
	<-entered
	run(t, b, h)
	ctx := context.Background()
	mtatest.Eventually(t, "b's attempt saved", func() bool {
		mi, err := b.Show(ctx, id)
		return err == nil && mi.Attempts == 1 && !mi.Busy
	})
	close(release)
	mtatest.Eventually(t, "a's late result dropped", func() bool {
		return logs.FilterMessage("attempt result dropped, the message was taken over").Len() == 1
	})
	mi, err := b.Show(ctx, id)
	if err != nil || len(mi.Recipients) != 1 || mi.Recipients[0].Address != "c@example.org" {
		t.Fatalf("after a's late finish: %+v, %v; want only c pending", mi, err)
	}
	h.next(t) // a's
	h.next(t) // b's
	if got := h.next(t); got.ID != id || got.Attempt != 2 || !slices.Equal(got.Rcpts, []string{"c@example.org"}) {
		t.Fatalf("next attempt of %s #%d to %v; want %s #2 to c only", got.ID, got.Attempt, got.Rcpts, id)
	}
	waitGone(t, b, id)
}

// TestActionRacesDone: a Retry that published the next generation of a
// message that an attempt then finished (state deleted) purges that
// generation, instead of leaving it to be rebuilt and delivered again.
func TestActionRacesDone(t *testing.T) {
	s := server(t)
	f := &faultJS{JetStream: s.JS}
	q := openQ(t, f, "n1", nil)
	id := commit(t, q, "a@example.org", []string{"b@example.org"}, []byte("body"))
	f.publish = func(ctx context.Context, m *nats.Msg, next func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
		a, err := next()
		if err == nil && m.Header.Get(hdrGen) != "0" {
			// An attempt finishes now: generation 0 acked, state deleted.
			err = errors.Join(q.stream.Purge(ctx, jetstream.WithPurgeSubject(m.Subject), jetstream.WithPurgeSequence(a.Sequence)),
				q.kv.Delete(ctx, id))
		}
		return a, err
	}
	res, err := q.Retry(context.Background(), []string{id}, false)
	if err != nil || len(res) != 1 || res[0].Err != queue.ErrUnknown {
		t.Fatalf("retry: %+v, %v; want ErrUnknown", res, err)
	}
	if r, err := q.OpenBody(id); err != queue.ErrUnknown {
		if err == nil {
			r.Close()
		}
		t.Fatalf("OpenBody after the race: %v; want no stream message left (ErrUnknown)", err)
	}
}

// TestStageBounded: a body read that never answers (no quorum) ends at
// its deadline, and the attempt is made again later, instead of holding
// a worker for ever.
func TestStageBounded(t *testing.T) {
	s := natstest.Start(t, 64<<10)
	var gets atomic.Int32
	f := &faultJS{JetStream: s.JS}
	f.objGet = func(ctx context.Context, name string) error {
		if gets.Add(1) == 1 {
			<-ctx.Done() // the first read gets no answer
			return ctx.Err()
		}
		return nil
	}
	q := openQ(t, f, "n1", func(o *Options) { o.Workers = 1 })
	q.stageBase = 100 * time.Millisecond
	body := bytes.Repeat([]byte("y"), 256<<10)
	id := commit(t, q, "a@example.org", []string{"b@example.org"}, body)
	h := newHandler(nil)
	run(t, q, h)
	if got := h.next(t); got.ID != id || !bytes.Equal(got.Body, body) || got.Attempt != 1 {
		t.Fatalf("delivered %s #%d, %d bytes", got.ID, got.Attempt, len(got.Body))
	}
	if n := gets.Load(); n != 2 {
		t.Fatalf("%d body reads; want 2 (the first cut at its deadline)", n)
	}
	waitGone(t, q, id)
}

// TestActionRacesAttempt: a Retry that published the next generation while
// an attempt claimed the message (so it answers busy) leaves a state naming
// that generation; the attempt, done, removes it with the message instead
// of leaving it to be rebuilt and delivered again.
func TestActionRacesAttempt(t *testing.T) {
	s := server(t)
	f := &faultJS{JetStream: s.JS}
	q := openQ(t, f, "n1", nil)
	id := commit(t, q, "a@example.org", []string{"b@example.org"}, []byte("body"))
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHandler(func(m *queue.Message) []queue.Result {
		if m.Attempt == 1 {
			close(entered)
			select {
			case <-release:
			case <-time.After(mtatest.Deadline):
			}
		}
		return results(m, nil, false)
	})
	f.publish = func(ctx context.Context, m *nats.Msg, next func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
		a, err := next()
		if err == nil && m.Header.Get(hdrGen) == "1" {
			run(t, q, h) // an attempt claims generation 0 now
			<-entered
		}
		return a, err
	}
	mustDo(t, "retry", "not retried (an attempt is in progress)")(q.Retry(context.Background(), []string{id}, false))
	close(release)
	waitGone(t, q, id) // every generation of its stream message too
	if got := <-h.seen; got.ID != id || len(h.seen) != 0 {
		t.Fatalf("delivered %s, then %d more times", got.ID, len(h.seen))
	}
}

// TestSweepUnnamedBodies: a body object no stream message names (a commit
// whose publish failed, kept since its outcome was unknown) is deleted by
// the sweep once old enough; a queued message's body is kept.
func TestSweepUnnamedBodies(t *testing.T) {
	s := server(t)
	q := openQ(t, s.JS, "n1", nil)
	ctx := context.Background()
	queued := commit(t, q, "a@example.org", []string{"b@example.org"}, bytes.Repeat([]byte("q"), 300<<10))
	orphan := queue.NewID(1)
	if _, err := q.obj.PutBytes(ctx, orphan, bytes.Repeat([]byte("o"), 300<<10)); err != nil {
		t.Fatal(err)
	}
	if n, err := q.sweep(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("sweep of young objects: %d deleted, %v; want none", n, err)
	}
	if n, err := q.sweep(ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep: %d deleted, %v; want 1", n, err)
	}
	if _, err := q.obj.GetInfo(ctx, orphan); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("orphan object: %v; want it deleted", err)
	}
	if _, err := q.obj.GetInfo(ctx, queued); err != nil {
		t.Fatalf("queued message's body: %v; want it kept", err)
	}
}

// TestCountErrorAfterACountKeepsAccepting: once a count was had, a stream
// info request that fails (a leader election after a node died) does not
// refuse new messages: the last count stands and the publish decides.
func TestCountErrorAfterACountKeepsAccepting(t *testing.T) {
	s := server(t)
	f := &faultJS{JetStream: s.JS}
	q := openQ(t, f, "n1", func(o *Options) { o.MaxMessages = 10 })
	w, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	f.info = func(ctx context.Context) error { return errors.New("no responders") }
	mtatest.Eventually(t, "a failed count request", func() bool {
		q.countMu.Lock()
		defer q.countMu.Unlock()
		if time.Since(q.countAt) >= countTTL {
			q.countMu.Unlock()
			q.streamCount(context.Background())
			q.countMu.Lock()
		}
		return q.countErr != nil
	})
	w, err = q.NewMessage(context.Background())
	if err != nil {
		t.Fatalf("NewMessage after a failed count, with one known before: %v", err)
	}
	w.Abort()
}

// TestFetchWarningGated: the workers' fetch failures, which come all at
// once from every worker, are said once per fetchWarnEvery.
func TestFetchWarningGated(t *testing.T) {
	var g rateGate
	now := time.Now()
	for i, tc := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {fetchWarnEvery - time.Second, false}, {fetchWarnEvery, true}, {fetchWarnEvery + time.Second, false}} {
		if got := g.allow(now.Add(tc.at)); got != tc.want {
			t.Fatalf("event %d at +%v: allowed %v, want %v", i, tc.at, got, tc.want)
		}
	}
}
