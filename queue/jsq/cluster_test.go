package jsq

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gomta/mta/mtatest"
	"gomta/queue"
)

// connect is a client of its own to s (a node's connection, to lose alone).
func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestTwoNodesShareTheWork: two queues ("nodes") on one server both take
// messages from the shared consumer, and each message is delivered once.
func TestTwoNodesShareTheWork(t *testing.T) {
	s := server(t)
	_, jsB := connect(t, s.S.ClientURL())
	one := func(o *Options) { o.Workers = 1 }
	a, b := openQ(t, s.JS, "a", one), openQ(t, jsB, "b", one)
	bDelivered := make(chan struct{})
	var bOnce sync.Once
	ha := newHandler(func(m *queue.Message) []queue.Result {
		// a waits for b's first delivery, so that b must take some work.
		select {
		case <-bDelivered:
		case <-time.After(mtatest.Deadline):
		}
		return results(m, nil, false)
	})
	hb := newHandler(func(m *queue.Message) []queue.Result {
		bOnce.Do(func() { close(bDelivered) })
		return results(m, nil, false)
	})
	const n = 20
	var ids []string
	for i := range n {
		ids = append(ids, commit(t, []*Queue{a, b}[i%2], "a@example.org", []string{"b@example.org"}, []byte("x")))
	}
	run(t, a, ha)
	run(t, b, hb)
	count := map[string]int{}
	by := map[string]int{}
	for range n {
		select {
		case got := <-ha.seen:
			count[got.ID]++
			by["a"]++
		case got := <-hb.seen:
			count[got.ID]++
			by["b"]++
		case <-time.After(mtatest.Deadline):
			t.Fatalf("timed out: delivered %v", count)
		}
	}
	for _, id := range ids {
		waitGone(t, a, id)
	}
	// Every attempt is recorded before its message is acked: all are in.
	for _, ch := range []chan seen{ha.seen, hb.seen} {
		for len(ch) > 0 {
			count[(<-ch).ID]++
		}
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s delivered %d times", id, count[id])
		}
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Errorf("deliveries by node: %v; want both", by)
	}
}

// TestAttemptTakenOverByTheOtherNode: a node that dies mid-attempt (its
// connection gone) has the message redelivered to the other node after
// AckWait; one stopped mid-attempt naks it, and the other takes it at once.
func TestAttemptTakenOverByTheOtherNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		dies bool
	}{{"node dies", true}, {"run stopped", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			ncA, jsA := connect(t, s.S.ClientURL())
			one := func(o *Options) { o.Workers = 1; o.AckWait = time.Second }
			a, b := openQ(t, jsA, "a", one), openQ(t, s.JS, "b", one)
			entered, release := make(chan struct{}), make(chan struct{})
			ha := newHandler(nil)
			ha.decideCtx = func(ctx context.Context, m *queue.Message) []queue.Result {
				close(entered)
				select {
				case <-release: // a dying node's handler never finishes in time
				case <-ctx.Done(): // Run stopped: the attempt is cut short
				case <-time.After(mtatest.Deadline):
				}
				return results(m, errTemp, false)
			}
			id := commit(t, a, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte("body"))
			stopA := run(t, a, ha)
			<-entered
			if tc.dies {
				ncA.Close()
			} else {
				stopA() // returns once the attempt is settled
			}
			hb := newHandler(nil)
			run(t, b, hb)
			got := hb.next(t)
			if got.ID != id || !slices.Equal(got.Rcpts, []string{"b@example.org", "c@example.org"}) || string(got.Body) != "body" {
				t.Fatalf("b got %s %v %q", got.ID, got.Rcpts, got.Body)
			}
			waitGone(t, b, id)
			if tc.dies {
				close(release)
				stopA()
			}
		})
	}
}

// TestControl: List, Show, Stats, Retry, Hold, Release, Drop and OpenBody
// through the API, on a node other than the one delivering.
func TestControl(t *testing.T) {
	s := server(t)
	q := openQ(t, s.JS, "n1", func(o *Options) { o.Retry = slices.Repeat([]time.Duration{time.Hour}, 10) })
	_, js2 := connect(t, s.S.ClientURL())
	ctl := openQ(t, js2, "n2", nil) // never runs: the control plane only
	ctx := context.Background()
	h := newHandler(func(m *queue.Message) []queue.Result {
		if m.From == "" {
			return results(m, nil, false)
		}
		return results(m, errTemp, false)
	})
	id := commit(t, q, "a@example.org", []string{"b@example.org"}, []byte("Subject: one\r\n\r\n"))
	id2 := commit(t, q, "a@example.org", []string{"c@example.org"}, []byte("Subject: two\r\n\r\n"))
	mustDo(t, "hold", "held")(ctl.Hold(ctx, []string{id2}))
	run(t, q, h)
	expect := func(wantID string, attempt int) {
		t.Helper()
		if got := h.next(t); got.ID != wantID || got.Attempt != attempt {
			t.Fatalf("attempt of %s #%d, want %s #%d", got.ID, got.Attempt, wantID, attempt)
		}
		mtatest.Eventually(t, "attempt settled", func() bool {
			mi, err := ctl.Show(ctx, wantID)
			return err == nil && mi.Attempts == attempt && !mi.Busy
		})
	}
	expect(id, 1)
	checkViews(t, ctl, id, id2)
	mustDo(t, "retry", "due now")(ctl.Retry(ctx, []string{id}, false))
	expect(id, 2)
	mustDo(t, "hold", "held")(ctl.Hold(ctx, []string{id}))
	mustDo(t, "retry held", "held: not retried (release it to send it)")(ctl.Retry(ctx, []string{id}, false))
	mustDo(t, "release", "released")(ctl.Release(ctx, []string{id2}))
	expect(id2, 1) // held from the start: never attempted before
	mustDo(t, "release", "released")(ctl.Release(ctx, []string{id}))
	expect(id, 3)
	mustDo(t, "retry all", "due now")(ctl.Retry(ctx, nil, true))
	expect2 := map[string]bool{}
	for range 2 {
		expect2[h.next(t).ID] = true
	}
	if !expect2[id] || !expect2[id2] {
		t.Fatalf("retry all attempted %v", expect2)
	}
	mtatest.Eventually(t, "attempts settled", func() bool {
		st, err := ctl.Stats(ctx)
		return err == nil && st.Active == 0 && st.Deferred == 2
	})
	checkDrops(t, q, ctl, h, id, id2)
}

// checkViews checks Show, List, Stats and OpenBody of TestControl's queue
// after id's first attempt (failed for the hour), id2 held.
func checkViews(t *testing.T, ctl *Queue, id, id2 string) {
	t.Helper()
	ctx := context.Background()
	mi, err := ctl.Show(ctx, id)
	if err != nil || len(mi.History) != 1 || mi.Recipients[0].Status != queue.RcptDeferred ||
		mi.Recipients[0].LastCode != 450 || mi.Next.Before(time.Now().Add(30*time.Minute)) {
		t.Fatalf("show %+v, %v", mi, err)
	}
	list, err := ctl.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != id || list[1].ID != id2 || !list[1].Held {
		t.Fatalf("list %+v, %v", list, err)
	}
	st, err := ctl.Stats(ctx)
	if err != nil || st.Messages != 2 || st.Held != 1 || st.Deferred != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	body, err := ctl.OpenBody(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if string(b) != "Subject: one\r\n\r\n" {
		t.Fatalf("OpenBody %q", b)
	}
}

// checkDrops drops TestControl's messages, id with a bounce from the
// delivering node q, id2 without from ctl, and checks that nothing is left.
func checkDrops(t *testing.T, q, ctl *Queue, h *handler, id, id2 string) {
	t.Helper()
	ctx := context.Background()
	mustDo(t, "drop with bounce", "dropped, bounce queued to <a@example.org>")(q.Drop(ctx, []string{id}, true))
	bounce := h.next(t)
	if bounce.From != "" || !strings.Contains(string(bounce.Body), "removed from the queue by the postmaster") ||
		!strings.Contains(string(bounce.Body), "original: Subject: one\r\n") {
		t.Fatalf("bounce from %q: %q", bounce.From, bounce.Body)
	}
	mustDo(t, "drop", "dropped")(ctl.Drop(ctx, []string{id2}, false))
	waitGone(t, q, id)
	waitGone(t, q, id2)
	res, err := ctl.Hold(ctx, []string{id, "not an id"})
	if err != nil || len(res) != 2 || res[0].Err != queue.ErrUnknown || res[1].Err != queue.ErrUnknown {
		t.Fatalf("hold of unknown ids: %+v, %v", res, err)
	}
	mtatest.Eventually(t, "empty queue", func() bool { return q.Len() == 0 })
}

// mustDo checks a one-id action's result: done, starting with want.
func mustDo(t *testing.T, what, want string) func([]queue.ActionResult, error) {
	t.Helper()
	return func(res []queue.ActionResult, err error) {
		t.Helper()
		if err != nil || len(res) == 0 {
			t.Fatalf("%s: %+v, %v", what, res, err)
		}
		for _, r := range res {
			if r.Err != nil || !strings.HasPrefix(r.Done, want) {
				t.Fatalf("%s: %s", what, fmt.Sprintf("%+v; want %q", res, want))
			}
		}
	}
}
