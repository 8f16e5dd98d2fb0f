package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// retryAll makes every message of a running q due now.
func retryAll(t *testing.T, q *Queue) {
	t.Helper()
	if _, err := q.Retry(context.Background(), nil, true); err != nil {
		t.Fatal(err)
	}
}

// noAnswer fails every recipient temporarily as a relay does when the far
// host does not answer.
func noAnswer(m *Message) []Result {
	res := make([]Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i] = Result{Rcpt: r, Err: errors.New("connect refused"),
			Failure: Failure{Enhanced: "4.4.1", Text: "connect to mx.far.test[127.0.0.1]:2: Connection refused"}}
	}
	return res
}

func act(t *testing.T, f func(context.Context, []string) ([]ActionResult, error), id string) ActionResult {
	t.Helper()
	r, err := f(context.Background(), []string{id})
	if err != nil || len(r) != 1 || r[0].ID != id {
		t.Fatalf("action on %s: %+v %v", id, r, err)
	}
	return r[0]
}

func TestControlListAndShowKeepTheLastReply(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	h, ch := recorder(t, noAnswer)
	id := commit(t, q, "s@x.test", []string{"a@far.test"}, "x\r\n")
	run(t, q, h)
	next(t, ch)
	var list []MessageInfo
	mtatest.Eventually(t, "the first attempt's outcome", func() bool {
		var err error
		list, err = q.List(context.Background())
		return err == nil && len(list) == 1 && list[0].Attempts == 1 && !list[0].Busy
	})
	m := list[0]
	r := m.Recipients
	if m.ID != id || m.From != "s@x.test" || m.Size != 3 || m.Held || len(r) != 1 || r[0].Address != "a@far.test" ||
		r[0].Status != RcptDeferred || r[0].LastEnhanced != "4.4.1" || !strings.Contains(r[0].LastReply, "Connection refused") ||
		m.Next.Before(time.Now().Add(50*time.Minute)) || m.History != nil {
		t.Fatalf("list: %+v", m)
	}
	s, err := q.Show(context.Background(), id)
	if err != nil || len(s.History) != 1 || s.History[0].Attempt != 1 || s.History[0].Results[0].Result != TryDeferred {
		t.Fatalf("show: %+v %v", s, err)
	}
	if _, err := q.Show(context.Background(), "06h4ijibtdit2fjk3vc0"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("show of an unknown id: %v", err)
	}
	if st, err := q.Stats(context.Background()); err != nil || st.Messages != 1 || st.Deferred != 1 || !st.Oldest.Equal(m.Arrival) {
		t.Fatalf("stats: %+v %v", st, err)
	}
}

// TestControlHoldSurvivesRestart: a held message is not attempted, even
// when Retry makes everything due, across a restart too, while a later
// message is; Release sends it.
func TestControlHoldSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	h1, ch1 := recorder(t, noAnswer)
	held := commit(t, q1, "s@x.test", []string{"a@far.test"}, "x\r\n")
	stop := run(t, q1, h1)
	next(t, ch1)
	mtatest.Eventually(t, "the first attempt's outcome", func() bool {
		s, err := q1.Show(context.Background(), held)
		return err == nil && s.Attempts == 1 && !s.Busy
	})
	if r := act(t, q1.Hold, held); r.Err != nil || r.Done != "held" {
		t.Fatalf("hold: %+v", r)
	}
	stop()

	q2 := open(t, dir, nil)
	h2, ch2 := recorder(t, nil)
	run(t, q2, h2)
	retryAll(t, q2)
	other := commit(t, q2, "s@x.test", []string{"b@far.test"}, "y\r\n")
	if m := next(t, ch2); m.ID != other {
		t.Fatalf("attempted %s, want only the later message %s", m.ID, other)
	}
	s, err := q2.Show(context.Background(), held)
	if err != nil || !s.Held || s.Recipients[0].Status != RcptHeld {
		t.Fatalf("after restart: %+v %v", s, err)
	}
	if r := act(t, q2.Release, held); r.Err != nil || r.Done != "released" {
		t.Fatalf("release: %+v", r)
	}
	if m := next(t, ch2); m.ID != held || m.Attempt != 2 {
		t.Fatalf("after release: attempt %d of %s", m.Attempt, m.ID)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q2.Len() == 0 })
}

// TestControlDuringAnAttempt: actions on a message in an attempt say so and
// apply once its outcome is in.
func TestControlDuringAnAttempt(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil) // retry after 1 ms: held is the only thing that stops it
	started, finish := make(chan struct{}), make(chan struct{})
	h := handlerFunc(func(ctx context.Context, m *Message) []Result {
		started <- struct{}{}
		<-finish
		return noAnswer(m)
	})
	id := commit(t, q, "s@x.test", []string{"a@far.test"}, "x\r\n")
	run(t, q, h)
	<-started
	if l, err := q.List(context.Background()); err != nil || !l[0].Busy || l[0].Recipients[0].Status != RcptActive {
		t.Fatalf("list during the attempt: %+v %v", l, err)
	}
	if r := act(t, q.Hold, id); r.Done != "held after the attempt in progress" {
		t.Fatalf("hold: %+v", r)
	}
	close(finish)
	mtatest.Eventually(t, "held once the attempt is over", func() bool {
		s, err := q.Show(context.Background(), id)
		return err == nil && s.Held && !s.Busy && s.Attempts == 1
	})
	drop := func(ctx context.Context, ids []string) ([]ActionResult, error) { return q.Drop(ctx, ids, false) }
	if r := act(t, drop, id); r.Err != nil || r.Done != "dropped" {
		t.Fatalf("drop: %+v", r)
	}
	if q.Len() != 0 {
		t.Fatalf("Len after drop: %d", q.Len())
	}
	if r := act(t, q.Hold, id); !errors.Is(r.Err, ErrUnknown) {
		t.Fatalf("hold after drop: %+v", r)
	}
}

func TestControlDropWithBounce(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	h, ch := recorder(t, func(m *Message) []Result {
		if m.From == "" {
			return allDone(m)
		}
		return noAnswer(m)
	})
	id := commit(t, q, "s@x.test", []string{"a@far.test"}, "x\r\n")
	run(t, q, h)
	next(t, ch)
	mtatest.Eventually(t, "the first attempt's outcome", func() bool {
		s, err := q.Show(context.Background(), id)
		return err == nil && s.Attempts == 1 && !s.Busy
	})
	r, err := q.Drop(context.Background(), []string{id}, true)
	if err != nil || r[0].Err != nil || r[0].Done != "dropped, bounce queued to <s@x.test>" {
		t.Fatalf("drop -bounce: %+v %v", r, err)
	}
	b := next(t, ch)
	if b.From != "" || b.Rcpts[0] != "s@x.test" || !strings.Contains(b.Body, "bounce of "+id) ||
		!strings.Contains(b.Body, "a@far.test 0 5.0.0 removed from the queue by the postmaster; last attempt: connect to") {
		t.Fatalf("bounce: %+v", b)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
}
