package jsbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"gomta/delivery/mailbox"
	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
)

const testHost = "mail.test"

// ioWait bounds a single operation of a test; it measures nothing.
const ioWait = 20 * time.Second

type node struct {
	s    *Store
	stop context.CancelFunc // ends Run
	done chan error         // Run's result
}

// startNode connects a new client to srv and runs a Store for testHost on
// it, as one node of a cluster would; the Store stops at cleanup.
func startNode(t testing.TB, srv *natstest.Server, name string, ttl time.Duration, users ...string) *node {
	t.Helper()
	nc, err := nats.Connect(srv.S.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	log := zap.NewNop() // a benchmark's log would be its output
	if _, bench := t.(*testing.B); !bench {
		log = zaptest.NewLogger(t)
	}
	s, err := New(ctx, Options{JS: js, Host: testHost, Node: name, LeaseTTL: ttl, Users: users, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	n := &node{s: s, stop: stop, done: make(chan error, 1)}
	go func() { n.done <- s.Run(runCtx) }()
	t.Cleanup(func() { n.halt(t) })
	return n
}

// halt ends Run and waits for it (its refreshers have stopped then).
func (n *node) halt(t testing.TB) {
	t.Helper()
	n.stop()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		n.done <- nil // a later halt returns at once
	case <-time.After(ioWait):
		t.Fatal("Run did not return")
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	t.Cleanup(cancel)
	return ctx
}

// deliver stages body as a spool file and delivers it to user.
func deliver(t *testing.T, s *Store, user, msgID, body string) {
	t.Helper()
	if err := tryDeliver(t, s, user, msgID, body); err != nil {
		t.Fatalf("Deliver %s to %s: %v", msgID, user, err)
	}
}

func tryDeliver(t *testing.T, s *Store, user, msgID, body string) error {
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return s.Deliver(ctxT(t), mailbox.Delivery{User: user, Rcpt: user, From: "sender@example.org", MsgID: msgID, BodyPath: p})
}

func open(t *testing.T, s *Store, user string) mailbox.Box {
	t.Helper()
	b, err := s.Open(ctxT(t), user)
	if err != nil {
		t.Fatalf("Open %s: %v", user, err)
	}
	return b
}

func read(t *testing.T, b mailbox.Box, i int) string {
	t.Helper()
	r, err := b.Open(ctxT(t), i)
	if err != nil {
		t.Fatalf("Open message %d: %v", i, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read message %d: %v", i, err)
	}
	return string(data)
}

// stored is what a Maildir would hold for body delivered to user.
func stored(user, body string) string {
	return string(mailbox.TraceHeaders("sender@example.org", user)) + body
}

// contents reads every message of b's listing.
func contents(t *testing.T, b mailbox.Box) []string {
	t.Helper()
	var out []string
	for i, inf := range b.List() {
		m := read(t, b, i)
		if int64(len(m)) != inf.Size {
			t.Errorf("message %d: Size %d, read %d octets", i, inf.Size, len(m))
		}
		out = append(out, m)
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

const (
	body1 = "Subject: one\r\n\r\nHello\r\n.dot\r\n"
	body2 = "Subject: two\r\n\r\nline\r\n"
	body3 = "Subject: three\r\n\r\n3\r\n"
)

func TestDeliverThenReadByteIdenticalWithTraceLines(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	deliver(t, n.s, "Alice@mail.test", "id-1", body1)
	deliver(t, n.s, "alice@mail.test", "id-2", body2)
	b := open(t, n.s, "alice@mail.test")
	equal(t, "messages", contents(t, b), []string{stored("alice@mail.test", body1), stored("alice@mail.test", body2)})
	l := b.List()
	if l[0].MsgID != "id-1" || l[1].MsgID != "id-2" || l[0].UID == l[1].UID || l[0].UID == "" {
		t.Fatalf("listing %+v: want msg_ids id-1, id-2 and distinct UIDs", l)
	}
	if err := b.Commit(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	// UIDs are stable across sessions.
	b = open(t, n.s, "alice@mail.test")
	defer b.Close()
	if got := b.List(); got[0].UID != l[0].UID || got[1].UID != l[1].UID {
		t.Fatalf("UIDs changed: %+v then %+v", l, got)
	}
}

func TestSameMsgIDAndUserDeliveredTwiceIsOneMessage(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n1 := startNode(t, srv, "n1", 0, "alice@mail.test", "bob@mail.test")
	n2 := startNode(t, srv, "n2", 0, "alice@mail.test", "bob@mail.test")
	deliver(t, n1.s, "alice@mail.test", "id-1", body1)
	// A redelivered attempt on another node, after the first node died
	// before telling the queue.
	deliver(t, n2.s, "alice@mail.test", "id-1", body1)
	deliver(t, n1.s, "bob@mail.test", "id-1", body1) // same msg_id, other recipient: its own copy
	a := open(t, n1.s, "alice@mail.test")
	defer a.Close()
	equal(t, "alice", contents(t, a), []string{stored("alice@mail.test", body1)})
	b := open(t, n1.s, "bob@mail.test")
	defer b.Close()
	equal(t, "bob", contents(t, b), []string{stored("bob@mail.test", body1)})
}

func TestTwoNodesShareMailboxesAndOneSessionPerMailbox(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n1 := startNode(t, srv, "n1", 0, "alice@mail.test")
	n2 := startNode(t, srv, "n2", 0, "alice@mail.test")
	deliver(t, n1.s, "alice@mail.test", "id-1", body1)

	b2 := open(t, n2.s, "alice@mail.test")
	equal(t, "read on n2", contents(t, b2), []string{stored("alice@mail.test", body1)})
	for _, n := range []*node{n1, n2} {
		if _, err := n.s.Open(ctxT(t), "alice@mail.test"); !errors.Is(err, mailbox.ErrInUse) {
			t.Fatalf("second Open on %s: %v, want ErrInUse", n.s.node, err)
		}
	}
	b2.Close()
	b2.Close() // idempotent
	b1 := open(t, n1.s, "alice@mail.test")
	if err := b1.Commit(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if err := b1.Commit(ctxT(t), nil); !errors.Is(err, mailbox.ErrDone) {
		t.Fatalf("second Commit: %v, want ErrDone", err)
	}
	if _, err := b1.Open(ctxT(t), 0); !errors.Is(err, mailbox.ErrDone) {
		t.Fatalf("Open after Commit: %v, want ErrDone", err)
	}
	open(t, n2.s, "alice@mail.test").Close()
}

func TestLeaseOfAVanishedHolderIsTakenOverAfterTTL(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	srv := natstest.Start(t, 0)
	n1 := startNode(t, srv, "n1", ttl, "alice@mail.test")
	n2 := startNode(t, srv, "n2", ttl, "alice@mail.test")
	deliver(t, n1.s, "alice@mail.test", "id-1", body1)
	dead := open(t, n1.s, "alice@mail.test")
	n1.halt(t) // its refresher stops; the lease is not released
	if _, err := n2.s.Open(ctxT(t), "alice@mail.test"); !errors.Is(err, mailbox.ErrInUse) {
		t.Fatalf("Open while the lease lives: %v, want ErrInUse", err)
	}
	var b mailbox.Box
	mtatest.Eventually(t, "the expired lease is taken over", func() bool {
		var err error
		b, err = n2.s.Open(ctxT(t), "alice@mail.test")
		return err == nil
	})
	defer b.Close()
	// The old holder's session ends without deleting anything.
	if err := dead.Commit(ctxT(t), []int{0}); !errors.Is(err, mailbox.ErrDone) {
		t.Fatalf("Commit of the lost session: %v, want ErrDone", err)
	}
	equal(t, "after the lost Commit", contents(t, b), []string{stored("alice@mail.test", body1)})
}

func TestRefreshThatFailsEndsTheBox(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 900*time.Millisecond, "alice@mail.test")
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
	b := open(t, n.s, "alice@mail.test")
	// Another party removes the lease (an operator, or a takeover).
	if err := n.s.locks.Delete(ctxT(t), userToken("alice@mail.test")); err != nil {
		t.Fatal(err)
	}
	mtatest.Eventually(t, "the Box ends", func() bool {
		_, err := b.Open(ctxT(t), 0)
		return errors.Is(err, mailbox.ErrDone)
	})
	if err := b.Commit(ctxT(t), []int{0}); !errors.Is(err, mailbox.ErrDone) {
		t.Fatalf("Commit: %v, want ErrDone", err)
	}
	b = open(t, n.s, "alice@mail.test")
	defer b.Close()
	if len(b.List()) != 1 {
		t.Fatalf("listing %+v: want the message kept", b.List())
	}
}

func TestDeleAtCommitAndListingFixedForTheSession(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
	deliver(t, n.s, "alice@mail.test", "id-2", body2)
	deliver(t, n.s, "alice@mail.test", "id-3", body3)
	b := open(t, n.s, "alice@mail.test")
	before := b.List()
	deliver(t, n.s, "alice@mail.test", "id-4", body1) // arrives during the session
	if got := b.List(); fmt.Sprint(got) != fmt.Sprint(before) || len(got) != 3 {
		t.Fatalf("listing changed during the session: %+v then %+v", before, got)
	}
	equal(t, "session", contents(t, b), []string{stored("alice@mail.test", body1), stored("alice@mail.test", body2), stored("alice@mail.test", body3)})
	if err := b.Commit(ctxT(t), []int{0, 2, 0}); err != nil {
		t.Fatal(err)
	}
	b = open(t, n.s, "alice@mail.test")
	defer b.Close()
	equal(t, "next session", contents(t, b), []string{stored("alice@mail.test", body2), stored("alice@mail.test", body1)})
	if l := b.List(); l[0].UID != before[1].UID || l[1].MsgID != "id-4" {
		t.Fatalf("listing %+v", l)
	}
}

func TestListingLeavesNoConsumer(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
	for range 3 {
		b := open(t, n.s, "alice@mail.test")
		if len(b.List()) != 1 {
			t.Fatalf("listing %+v", b.List())
		}
		b.Close()
	}
	info, err := n.s.stream.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the stream after three sessions, want 0", info.State.Consumers)
	}
}

func TestLargeBodyGoesThroughTheObjectStore(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 64*1024)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	var sb strings.Builder
	sb.WriteString("Subject: big\r\n\r\n")
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "line %08d of a body too large for one NATS message\r\n", i)
	}
	big := sb.String()
	deliver(t, n.s, "alice@mail.test", "id-big", big)
	deliver(t, n.s, "alice@mail.test", "id-big", big) // a duplicate leaves no second object
	deliver(t, n.s, "alice@mail.test", "id-small", body1)
	objects := func() int {
		l, err := n.s.objs.List(ctxT(t))
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if got := objects(); got != 1 {
		t.Fatalf("%d objects, want 1", got)
	}
	b := open(t, n.s, "alice@mail.test")
	got := contents(t, b)
	if len(got) != 2 || got[0] != stored("alice@mail.test", big) || got[1] != stored("alice@mail.test", body1) {
		t.Fatalf("read back %d messages, first of %d octets; want the 1 MiB body byte-identical", len(got), len(got[0]))
	}
	if err := b.Commit(ctxT(t), []int{0}); err != nil {
		t.Fatal(err)
	}
	if got := objects(); got != 0 {
		t.Fatalf("%d objects after DELE, want 0", got)
	}
}

func TestUnknownUserAndAdd(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test")
	if err := tryDeliver(t, n.s, "carol@mail.test", "id-1", body1); !errors.Is(err, mailbox.ErrNoUser) {
		t.Fatalf("Deliver: %v, want ErrNoUser", err)
	}
	if _, err := n.s.Open(ctxT(t), "carol@mail.test"); !errors.Is(err, mailbox.ErrNoUser) {
		t.Fatalf("Open: %v, want ErrNoUser", err)
	}
	if err := n.s.Add([]string{"Carol@mail.test"}); err != nil {
		t.Fatal(err)
	}
	deliver(t, n.s, "carol@mail.test", "id-1", body1)
	b := open(t, n.s, "carol@mail.test")
	defer b.Close()
	equal(t, "carol", contents(t, b), []string{stored("carol@mail.test", body1)})
}

func TestUTF8AccountName(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "用户@例子.中国", "a.b c@mail.test")
	deliver(t, n.s, "用户@xn--fsqu00a.xn--fiqs8s", "id-1", body1) // the A-label spelling: one mailbox
	deliver(t, n.s, "a.b c@mail.test", "id-2", body2)
	b := open(t, n.s, "用户@例子.中国")
	defer b.Close()
	user := "用户@xn--fsqu00a.xn--fiqs8s" // address.Account's folded form
	equal(t, "utf-8 mailbox", contents(t, b), []string{stored(user, body1)})
	c := open(t, n.s, "a.b c@mail.test")
	defer c.Close()
	equal(t, "dotted mailbox", contents(t, c), []string{stored("a.b c@mail.test", body2)})
}

func TestNewIsIdempotentAcrossNodesStartingAtOnce(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := New(ctxT(t), Options{JS: srv.JS, Host: testHost, Node: fmt.Sprint("n", i), Users: []string{"alice@mail.test"}})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	n := startNode(t, srv, "n5", 0, "alice@mail.test") // and once more, later
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
}

func TestHostToken(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("sub.", 20) + "example.org"
	toks := map[string]string{}
	for _, h := range []string{"mail.test", "mail.test2", "mailtest", "mail-test", "例子.中国", long, long + "x"} {
		tok := hostToken(h)
		if prev, dup := toks[tok]; dup {
			t.Errorf("%q and %q share token %s", prev, h, tok)
		}
		toks[tok] = h
		if len(tok) > 65 || strings.ContainsAny(tok, ". *>/\\") {
			t.Errorf("token %q of %q: not a safe name", tok, h)
		}
	}
	if hostToken("Mail.Test.") != hostToken("mail.test") {
		t.Error("a host name's case or trailing dot changes its token")
	}
	if bytes.ContainsAny([]byte(userToken("用户 a.b")), ". *>") {
		t.Error("user token is not one subject token")
	}
}

// TestSpoolFileWithTraceFieldsIsStoredOnce: a spool file that starts with
// the trace fields the queue wrote for one local account (Delivery
// TraceLen, TraceTo) gets this mailbox's trace fields once, for that
// account as for another.
func TestSpoolFileWithTraceFieldsIsStoredOnce(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 0, "alice@mail.test", "bob@mail.test")
	fields, acct := mailbox.TraceFields("sender@example.org", "alice@mail.test")
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, append(fields, body1...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@mail.test", "bob@mail.test"} {
		d := mailbox.Delivery{User: u, Rcpt: u, From: "sender@example.org", MsgID: "id-1", BodyPath: p,
			Size: int64(len(fields) + len(body1)), TraceLen: int64(len(fields)), TraceTo: acct}
		if err := n.s.Deliver(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
		b := open(t, n.s, u)
		equal(t, u, contents(t, b), []string{stored(u, body1)})
		b.Close()
	}
}
