package jsq

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
	"gomta/queue"
)

// handler is a fake queue.Handler: it records every attempt (with the body
// read from BodyPath) on a channel and answers with decide (nil: done).
type handler struct {
	decide func(m *queue.Message) []queue.Result
	// decideCtx, when set, answers instead of decide, seeing Run's ctx.
	decideCtx func(ctx context.Context, m *queue.Message) []queue.Result
	seen      chan seen
}

type seen struct {
	queue.Message
	Body []byte
}

func newHandler(decide func(m *queue.Message) []queue.Result) *handler {
	return &handler{decide: decide, seen: make(chan seen, 100)}
}

func (h *handler) Deliver(ctx context.Context, m *queue.Message) []queue.Result {
	b, err := readBody(m)
	if err != nil {
		panic(err) // turned into a temporary failure by the queue, and seen as none here
	}
	h.seen <- seen{Message: *m, Body: b}
	if h.decideCtx != nil {
		return h.decideCtx(ctx, m)
	}
	if h.decide != nil {
		return h.decide(m)
	}
	return results(m, nil, false)
}

func readBody(m *queue.Message) ([]byte, error) {
	r, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (h *handler) WriteBounce(w io.Writer, m *queue.Message, failed []queue.Failure) error {
	_, err := fmt.Fprintf(w, "Subject: bounce of %s\r\n\r\n", m.ID)
	for _, x := range failed {
		if err == nil {
			_, err = fmt.Fprintf(w, "%s %d %s %s status=%s\r\n", x.Rcpt, x.Code, x.Enhanced, x.Text, x.Status)
		}
	}
	// The original as a real Handler quotes it (its headers), or why not.
	orig, oerr := readBody(m)
	if oerr != nil {
		orig = []byte(oerr.Error())
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "original: %s\r\n", orig)
	}
	return err
}

func (h *handler) WriteDelay(w io.Writer, m *queue.Message, pending []queue.Failure) error {
	_, err := fmt.Fprintf(w, "Subject: delay of %s\r\n\r\n", m.ID)
	return err
}

func (h *handler) WriteSuccess(w io.Writer, m *queue.Message, done []queue.Failure) error {
	_, err := fmt.Fprintf(w, "Subject: success of %s\r\n\r\n", m.ID)
	return err
}

// results answers every recipient of m: done when err is nil, else failed
// (permanently when perm).
func results(m *queue.Message, err error, perm bool) []queue.Result {
	out := make([]queue.Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		out[i] = queue.Result{Rcpt: r, Err: err, Permanent: perm}
		if err != nil {
			out[i].Failure = queue.Failure{Code: 450, Enhanced: "4.2.0", Text: err.Error()}
			if perm {
				out[i].Failure = queue.Failure{Code: 550, Enhanced: "5.1.1", Text: err.Error()}
			}
		}
	}
	return out
}

// next waits for the handler's next attempt.
func (h *handler) next(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-h.seen:
		return s
	case <-time.After(mtatest.Deadline):
		t.Fatal("timed out waiting for a delivery attempt")
		return seen{}
	}
}

// openQ opens a queue for host "example.org" as node on js.
func openQ(t *testing.T, js jetstream.JetStream, node string, mod func(*Options)) *Queue {
	t.Helper()
	opt := Options{JS: js, Host: "example.org", Node: node, Workers: 2, MaxMessages: -1,
		Retry: []time.Duration{100 * time.Millisecond}, AckWait: 2 * time.Second,
		TmpDir: t.TempDir(), Logger: zaptest.NewLogger(t).Named(node)}
	if mod != nil {
		mod(&opt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// run starts q.Run(h) until the test ends (or stop is called) and waits for it.
func run(t *testing.T, q *Queue, h queue.Handler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = q.Run(ctx, h) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// commit queues body from from to rcpts and returns its id.
func commit(t *testing.T, q *Queue, from string, rcpts []string, body []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, from, rcpts); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// waitGone waits until id is no longer queued (state and stream message).
func waitGone(t *testing.T, q *Queue, id string) {
	t.Helper()
	mtatest.Eventually(t, "message "+id+" gone", func() bool {
		_, err := q.Show(context.Background(), id)
		if err != queue.ErrUnknown {
			return false
		}
		_, err = q.OpenBody(id)
		return err == queue.ErrUnknown
	})
}

func server(t *testing.T) *natstest.Server { return natstest.Start(t, 0) }

type ioWriter = io.Writer

// writeTemp is a staged body holding s.
func writeTemp(t *testing.T, s string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
