package jsbox

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
)

// faultyJS wraps a JetStream and makes its first publish fail: stored but
// with its ack lost (a timeout or a leader election after the quorum wrote
// it), or not stored at all.
type faultyJS struct {
	jetstream.JetStream
	store bool // the failed publish is stored all the same
	n     atomic.Int32
}

func (f *faultyJS) PublishMsg(ctx context.Context, m *nats.Msg, o ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if f.n.Add(1) != 1 {
		return f.JetStream.PublishMsg(ctx, m, o...)
	}
	if f.store {
		if _, err := f.JetStream.PublishMsg(ctx, m, o...); err != nil {
			return nil, err
		}
	}
	return nil, context.DeadlineExceeded
}

// bigBody is a body over the 64 KiB max payload the tests here give the
// server: it goes to the object store.
func bigBody() string { return "Subject: big\r\n\r\n" + strings.Repeat("x", 200<<10) + "\r\n" }

func faultyStore(t *testing.T, js *faultyJS, opt Options) *Store {
	t.Helper()
	opt.JS, opt.Host, opt.Node, opt.Logger = js, testHost, "n1", zaptest.NewLogger(t)
	opt.Users = []string{"bob@mail.test", "carol@mail.test"}
	s, err := New(ctxT(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func objectCount(t *testing.T, s *Store) int {
	t.Helper()
	l, err := s.objs.List(ctxT(t))
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestLostAckKeepsTheObjectTheStoredMessageNames: the first attempt's
// message is stored but its ack lost, so Deliver fails and the queue
// retries; the retry is a duplicate. The one message listed must still
// read back whole (before the fix the failed attempt deleted its object).
func TestLostAckKeepsTheObjectTheStoredMessageNames(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 64<<10)
	s := faultyStore(t, &faultyJS{JetStream: srv.JS, store: true}, Options{})
	body := bigBody()
	if err := tryDeliver(t, s, "bob@mail.test", "msg1", body); err == nil {
		t.Fatal("first attempt: nil error, want the lost ack's")
	}
	deliver(t, s, "bob@mail.test", "msg1", body) // the queue's retry: a duplicate
	b := open(t, s, "bob@mail.test")
	defer b.Close()
	equal(t, "bob", contents(t, b), []string{stored("bob@mail.test", body)})
	if got := objectCount(t, s); got != 1 {
		t.Fatalf("%d objects, want 1 (the retry's own dropped)", got)
	}
}

// TestSweepRemovesObjectsNoMessageNames: a publish that failed without
// storing leaves its object; once the Dedup window has passed, Run's
// sweep removes it and keeps every object a message names.
func TestSweepRemovesObjectsNoMessageNames(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 64<<10)
	s := faultyStore(t, &faultyJS{JetStream: srv.JS}, Options{Dedup: time.Second, SweepEvery: 200 * time.Millisecond})
	body := bigBody()
	if err := tryDeliver(t, s, "bob@mail.test", "msg1", body); err == nil {
		t.Fatal("first attempt: nil error, want the publish's")
	}
	if got := objectCount(t, s); got != 1 {
		t.Fatalf("%d objects after the failed publish, want its object kept", got)
	}
	deliver(t, s, "bob@mail.test", "msg1", body)
	deliver(t, s, "carol@mail.test", "msg1", body)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { stop(); <-done }()
	mtatest.Eventually(t, "the orphan object swept", func() bool { return objectCount(t, s) == 2 })
	for _, u := range []string{"bob@mail.test", "carol@mail.test"} {
		b := open(t, s, u)
		equal(t, u, contents(t, b), []string{stored(u, body)})
		b.Close()
	}
}

func TestObjectUser(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"m1/Ym9i/0123": "Ym9i", "a/b/Ym9i/0123": "Ym9i", "m1/Ym9i": "", "x": "", "m1//0123": ""} {
		if got, ok := objectUser(name); got != want || ok != (want != "") {
			t.Errorf("objectUser(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// TestSlowReaderOfAnObjectGetsItWhole: a RETR of a message in the object
// store, on a session context without deadline, drained by a client
// slower than the library's default API timeout, still gets every octet.
func TestSlowReaderOfAnObjectGetsItWhole(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 64<<10)
	const apiTimeout = 300 * time.Millisecond // the library's default is 5 s
	js, err := jetstream.New(srv.NC, jetstream.WithDefaultTimeout(apiTimeout))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctxT(t), Options{JS: js, Host: testHost, Node: "n1", Users: []string{"bob@mail.test"}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	body := bigBody()
	deliver(t, s, "bob@mail.test", "msg1", body)
	b := open(t, s, "bob@mail.test")
	defer b.Close()
	r, err := b.Open(context.Background(), 0) // as a POP3 session's context
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1024)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * apiTimeout) // a slow client: no assertion on time
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after a pause: %v", err)
	}
	if got := string(head) + string(rest); got != stored("bob@mail.test", body) {
		t.Fatalf("read %d octets, want %d", len(got), len(stored("bob@mail.test", body)))
	}
}

// TestMessageOverTheInlineLimitGoesToTheObjectStore: a 300 KiB message
// fits the server's 1 MiB max payload but is over the 256 KiB inline
// limit: it is stored as an object, and reads back whole.
func TestMessageOverTheInlineLimitGoesToTheObjectStore(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	body := "Subject: mid\r\n\r\n" + strings.Repeat("y", 300<<10) + "\r\n"
	deliver(t, n.s, "alice@mail.test", "id-1", body)
	deliver(t, n.s, "alice@mail.test", "id-2", body1)
	if got := objectCount(t, n.s); got != 1 {
		t.Fatalf("%d objects, want 1", got)
	}
	b := open(t, n.s, "alice@mail.test")
	defer b.Close()
	equal(t, "alice", contents(t, b), []string{stored("alice@mail.test", body), stored("alice@mail.test", body1)})
}
