package jsbox

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gomta/delivery/mailbox"
	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
)

// TestBoxWhoseLeaseRanOutReadsNothing: a Box whose lease has run out
// before its refresher noticed (a renewal is due only every third of the
// TTL) reads nothing: another node's session may hold the lease by then.
func TestBoxWhoseLeaseRanOutReadsNothing(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n := startNode(t, srv, "n1", 30*time.Second, "alice@mail.test") // no renewal during the test
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
	b := open(t, n.s, "alice@mail.test").(*Box)
	defer b.Close()
	if got := read(t, b, 0); got != stored("alice@mail.test", body1) {
		t.Fatalf("read %q", got)
	}
	b.mu.Lock()
	b.expires = time.Now().Add(-time.Millisecond) // ran out, unnoticed
	b.mu.Unlock()
	if _, err := b.Open(ctxT(t), 0); !errors.Is(err, mailbox.ErrDone) {
		t.Fatalf("Open after the lease ran out: %v, want ErrDone", err)
	}
}

// slowListing wraps a JetStream whose listing consumers are created only
// once release is closed: a listing slower than the lease's TTL.
type slowListing struct {
	jetstream.JetStream
	release chan struct{}
}

func (s *slowListing) OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.JetStream.OrderedConsumer(ctx, stream, cfg)
}

// TestLeaseRenewedWhileListing: Open holds the lease while it lists, so a
// listing longer than the TTL neither lets another session in nor returns
// a Box whose lease is gone.
func TestLeaseRenewedWhileListing(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n2 := startNode(t, srv, "n2", 1500*time.Millisecond, "alice@mail.test")
	deliver(t, n2.s, "alice@mail.test", "id-1", body1)
	slow := &slowListing{JetStream: srv.JS, release: make(chan struct{})}
	s, err := New(ctxT(t), Options{JS: slow, Host: testHost, Node: "n1", LeaseTTL: 1500 * time.Millisecond, Users: []string{"alice@mail.test"}})
	if err != nil {
		t.Fatal(err)
	}
	type opened struct {
		b   mailbox.Box
		err error
	}
	res := make(chan opened, 1)
	go func() {
		b, err := s.Open(context.Background(), "alice@mail.test")
		res <- opened{b, err}
	}()
	key := userToken("alice@mail.test")
	var first uint64
	mtatest.Eventually(t, "the lease renewed twice during the listing", func() bool {
		e, err := n2.s.locks.Get(ctxT(t), key)
		if err != nil {
			return false
		}
		if first == 0 {
			first = e.Revision()
		}
		return e.Revision() >= first+2
	})
	if _, err := n2.s.Open(ctxT(t), "alice@mail.test"); !errors.Is(err, mailbox.ErrInUse) {
		t.Fatalf("Open on n2 during n1's listing: %v, want ErrInUse", err)
	}
	close(slow.release)
	r := <-res
	if r.err != nil {
		t.Fatalf("Open: %v", r.err)
	}
	defer r.b.Close()
	equal(t, "listed", contents(t, r.b), []string{stored("alice@mail.test", body1)})
}

// TestRenewalFollowsTheBucketTTL: the lease bucket is shared and the last
// node to provision it sets its TTL; a node configured with a longer
// lease_ttl renews at the bucket's pace and keeps its sessions.
func TestRenewalFollowsTheBucketTTL(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	n1 := startNode(t, srv, "n1", 6*time.Second, "alice@mail.test")
	n2 := startNode(t, srv, "n2", time.Second, "alice@mail.test") // provisions last: TTL 1 s
	deliver(t, n1.s, "alice@mail.test", "id-1", body1)
	mtatest.Eventually(t, "n1 reads the bucket's TTL", func() bool { return n1.s.ttl() == time.Second })
	b := open(t, n1.s, "alice@mail.test").(*Box)
	defer b.Close()
	b.mu.Lock()
	rev := b.rev
	b.mu.Unlock()
	mtatest.Eventually(t, "n1 renews its lease three times", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.rev >= rev+3 || b.ended
	})
	if !b.live() {
		t.Fatal("n1's session lost its lease")
	}
	if _, err := n2.s.Open(ctxT(t), "alice@mail.test"); !errors.Is(err, mailbox.ErrInUse) {
		t.Fatalf("Open on n2: %v, want ErrInUse", err)
	}
	equal(t, "n1 reads", contents(t, b), []string{stored("alice@mail.test", body1)})
}

// flakyKV fails lease renewals, as the bucket does while its leader is
// being elected, once fail is set.
type flakyKV struct {
	jetstream.KeyValue
	fail atomic.Bool
}

func (f *flakyKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if f.fail.Load() {
		return 0, nats.ErrTimeout
	}
	return f.KeyValue.Update(ctx, key, value, rev)
}

// TestCommitWithNothingToDeleteNeedsNoRenewal: a QUIT that deletes nothing
// succeeds while the lease cannot be renewed; one that deletes does not.
func TestCommitWithNothingToDeleteNeedsNoRenewal(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, 0)
	// No Run: its TTL watch would read s.locks while the test swaps it.
	s, err := New(ctxT(t), Options{JS: srv.JS, Host: testHost, Node: "n1", LeaseTTL: 30 * time.Second, Users: []string{"alice@mail.test"}})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{s: s}
	deliver(t, n.s, "alice@mail.test", "id-1", body1)
	kv := &flakyKV{KeyValue: n.s.locks}
	n.s.locks = kv // before any Box: its refresher reads it
	b := open(t, n.s, "alice@mail.test")
	kv.fail.Store(true)
	if err := b.Commit(ctxT(t), nil); err != nil {
		t.Fatalf("Commit with nothing to delete: %v, want nil", err)
	}
	kv.fail.Store(false)
	b = open(t, n.s, "alice@mail.test") // the lease was released
	kv.fail.Store(true)
	if err := b.Commit(ctxT(t), []int{0}); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("Commit deleting with no renewal: %v, want the renewal's error", err)
	}
	kv.fail.Store(false)
	b = open(t, n.s, "alice@mail.test")
	defer b.Close()
	equal(t, "kept", contents(t, b), []string{stored("alice@mail.test", body1)})
}
