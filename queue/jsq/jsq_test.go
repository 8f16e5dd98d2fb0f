package jsq

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
	"gomta/queue"
)

var errTemp = errors.New("mailbox busy")

// TestCommitDelivers: the Handler gets the message with its body byte for
// byte, inline under the max payload and through the object store over it.
func TestCommitDelivers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPayload int32
		size       int
		object     bool
	}{
		{"inline", 0, 10 << 10, false},
		{"object store", 64 << 10, 1 << 20, true},
		{"over the inline limit", 0, inlineMax + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t, tc.maxPayload)
			q := openQ(t, s.JS, "n1", nil)
			body := make([]byte, tc.size)
			_, _ = rand.Read(body)
			id := commit(t, q, "a@example.org", []string{"b@example.org"}, body)
			ctx := context.Background()
			st, _, err := q.get(ctx, id)
			if err != nil || st.Object != tc.object {
				t.Fatalf("state %+v, %v: want object %v", st, err, tc.object)
			}
			h := newHandler(nil)
			run(t, q, h)
			got := h.next(t)
			if got.ID != id || got.From != "a@example.org" || !slices.Equal(got.Rcpts, []string{"b@example.org"}) ||
				got.Attempt != 1 || got.Size != int64(tc.size) || !bytes.Equal(got.Body, body) {
				t.Fatalf("got %s from %s to %v attempt %d size %d, body equal %v",
					got.ID, got.From, got.Rcpts, got.Attempt, got.Size, bytes.Equal(got.Body, body))
			}
			waitGone(t, q, id)
			if tc.object {
				if _, err := q.obj.GetInfo(ctx, id); err == nil {
					t.Fatal("body object left after the message is done")
				}
			}
		})
	}
}

// TestOutcomes: temporary failures are retried, permanent ones bounced, a
// partial attempt leaves only the pending recipient, and the attempt past
// MaxLifetime is final and bounces with 5.4.7.
func TestOutcomes(t *testing.T) {
	rcpts := []string{"b@example.org", "c@example.org"}
	for _, tc := range []struct {
		name   string
		mod    func(*Options)
		decide func(m *queue.Message) []queue.Result
		// attempts is what the original's attempts had as recipients;
		// bounce, when set, is what the bounce to the sender must say.
		attempts [][]string
		bounce   string
	}{
		{"temporary then done", nil, func(m *queue.Message) []queue.Result {
			if m.Attempt == 1 {
				return results(m, errTemp, false)
			}
			return results(m, nil, false)
		}, [][]string{rcpts, rcpts}, ""},
		{"permanent", nil, func(m *queue.Message) []queue.Result {
			return results(m, errors.New("no such user"), true)
		}, [][]string{rcpts}, "c@example.org 550 5.1.1 no such user"},
		{"partial", nil, func(m *queue.Message) []queue.Result {
			if m.Attempt == 1 {
				return []queue.Result{{Rcpt: "b@example.org"}, {Rcpt: "c@example.org", Err: errTemp}}
			}
			return results(m, nil, false)
		}, [][]string{rcpts, {"c@example.org"}}, ""},
		{"final past lifetime", func(o *Options) {
			o.Retry = []time.Duration{time.Hour}
			o.MaxLifetime = 1500 * time.Millisecond
		}, func(m *queue.Message) []queue.Result {
			return results(m, errTemp, false)
		}, [][]string{rcpts, rcpts}, "status=5.4.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			q := openQ(t, s.JS, "n1", tc.mod)
			h := newHandler(func(m *queue.Message) []queue.Result {
				if m.From == "" {
					return results(m, nil, false) // the bounce
				}
				return tc.decide(m)
			})
			id := commit(t, q, "a@example.org", rcpts, []byte("Subject: hi\r\n\r\nbody\r\n"))
			run(t, q, h)
			for i, want := range tc.attempts {
				got := h.next(t)
				if got.ID != id || got.Attempt != i+1 || !slices.Equal(got.Rcpts, want) {
					t.Fatalf("attempt %d: got %s attempt %d rcpts %v; want %s, %v", i+1, got.ID, got.Attempt, got.Rcpts, id, want)
				}
				if final := i == len(tc.attempts)-1; tc.name == "final past lifetime" && got.Final != final {
					t.Fatalf("attempt %d: Final %v, want %v", i+1, got.Final, final)
				}
			}
			if tc.bounce != "" {
				b := h.next(t)
				if b.From != "" || !slices.Equal(b.Rcpts, []string{"a@example.org"}) || !strings.Contains(string(b.Body), tc.bounce) {
					t.Fatalf("bounce from %q to %v: %q; want from <> to a@example.org saying %q", b.From, b.Rcpts, b.Body, tc.bounce)
				}
			}
			waitGone(t, q, id)
		})
	}
}

// TestRetriedPublishMakesOneMessage: publishing the same message twice (a
// commit retried after a lost ack) leaves one stream message, delivered once.
func TestRetriedPublishMakesOneMessage(t *testing.T) {
	s := server(t)
	q := openQ(t, s.JS, "n1", nil)
	ctx := context.Background()
	env := envelope{ID: queue.NewID(1), From: "a@example.org", Rcpts: []string{"b@example.org"}, Received: time.Now().UTC(), Size: 5}
	for range 2 {
		f := writeTemp(t, "hello")
		if err := q.publishNew(ctx, &env, f); err != nil {
			t.Fatal(err)
		}
	}
	info, err := q.stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %v messages (%v), want 1", info.State.Msgs, err)
	}
	h := newHandler(nil)
	run(t, q, h)
	if got := h.next(t); got.ID != env.ID || string(got.Body) != "hello" {
		t.Fatalf("got %s %q", got.ID, got.Body)
	}
	waitGone(t, q, env.ID)
	select {
	case got := <-h.seen:
		t.Fatalf("second delivery of %s", got.ID)
	default:
	}
}

// TestErrFull: past MaxMessages NewMessage answers queue.ErrFull, and a
// bounce still gets room.
func TestErrFull(t *testing.T) {
	s := server(t)
	q := openQ(t, s.JS, "n1", func(o *Options) { o.MaxMessages = 2 })
	for range 2 {
		commit(t, q, "a@example.org", []string{"b@example.org"}, []byte("x"))
	}
	ctx := context.Background()
	mtatest.Eventually(t, "ErrFull", func() bool {
		w, err := q.NewMessage(ctx)
		if err == nil {
			w.Abort()
		}
		return errors.Is(err, queue.ErrFull)
	})
	if err := q.queueReport(ctx, queue.NewID(1), "a@example.org", func(w ioWriter) error { _, err := w.Write([]byte("bounce")); return err }); err != nil {
		t.Fatalf("bounce refused in a full queue: %v", err)
	}
	mtatest.Eventually(t, "Len 3", func() bool { return q.Len() == 3 })
}

// TestCommitFailsWithoutServer: a commit whose publish cannot be
// acknowledged returns an error (the session answers 451), not a hang.
func TestCommitFailsWithoutServer(t *testing.T) {
	s := server(t)
	q := openQ(t, s.JS, "n1", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	w, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: x\r\n\r\nx\r\n"))
	s.S.Shutdown()
	s.S.WaitForShutdown()
	if err := w.Commit(ctx, "a@example.org", []string{"b@example.org"}); err == nil {
		t.Fatal("commit succeeded with the server down")
	}
	if n := q.drafts.Load(); n != 0 {
		t.Fatalf("%d drafts left after a failed commit", n)
	}
}
