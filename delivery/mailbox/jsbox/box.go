package jsbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gomta/queue/jsobj"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/delivery/mailbox"
	"gomta/session/logvocab"
)

// releaseWait bounds the release of a lease at Close, which has no ctx: a
// lease not released expires by itself after LeaseTTL.
const releaseWait = 10 * time.Second

// listWait bounds reading a listing when Open's ctx has no deadline: the
// headers of the messages counted are in the stream, so only a server in
// trouble makes it wait.
const listWait = time.Minute

// consumerIdle is how long the server keeps a listing's consumer that was
// not deleted (its client died mid-listing).
const consumerIdle = 30 * time.Second

// entry is one listed message.
type entry struct {
	info mailbox.Info
	seq  uint64
	obj  string // object holding it; "" when the stream message holds it
}

// Box is one POP3 session's hold on a mailbox: the lease and the listing
// fixed at Open. It is meant for one goroutine (the POP3 session); Close may
// be called from anywhere, any number of times.
type Box struct {
	s      *Store
	user   string
	key    string // lease key
	holder []byte // lease value: node and session
	list   []entry

	mu      sync.Mutex
	rev     uint64    // the lease's revision; under mu
	expires time.Time // when the lease runs out unless renewed; under mu
	ended   bool      // Commit or Close ran, or the lease was lost; under mu

	quit     chan struct{} // closed to stop the refresher
	quitOnce sync.Once
	refresh  sync.WaitGroup
}

// Open takes user's lease (mailbox.ErrInUse when another session anywhere
// in the cluster holds it) and fixes the listing. mailbox.ErrNoUser for an
// unknown user. The ctx bounds only this call.
func (s *Store) Open(ctx context.Context, user string) (mailbox.Box, error) {
	u, err := s.user(user)
	if err != nil {
		return nil, err
	}
	key := userToken(u)
	holder := []byte(s.node + "/" + nonce())
	start := time.Now()
	rev, err := s.takeLease(ctx, key, holder)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%w: %s", mailbox.ErrInUse, u)
	}
	if err != nil {
		return nil, fmt.Errorf("jsbox: lease %s: %w", u, err)
	}
	b := &Box{s: s, user: u, key: key, holder: holder, rev: rev, expires: start.Add(s.ttl()), quit: make(chan struct{})}
	// The refresher runs from here: a listing may take longer than the
	// lease lives (a large mailbox, a slow server).
	s.startRefresh(b)
	b.list, err = s.listing(ctx, s.subject(key))
	if err == nil && !b.live() {
		err = fmt.Errorf("%w: %s: lease lost while listing", mailbox.ErrInUse, u)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// startRefresh runs b's lease refresher until b ends or Run's ctx ends.
func (s *Store) startRefresh(b *Box) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return // Run is over: the lease lives its TTL, Commit checks it
	}
	b.refresh.Add(1)
	s.wg.Go(func() {
		defer b.refresh.Done()
		defer func() {
			if p := recover(); p != nil {
				// A Box without its refresher loses its lease: end it.
				b.mu.Lock()
				b.ended = true
				b.mu.Unlock()
				s.log.Error("lease refresher panicked", zap.String(logvocab.User, b.user), zap.Any("panic", p), zap.Stack("stack"))
			}
		}()
		b.refresher()
	})
}

// refresher renews the lease every third of the bucket's TTL (ttl). The lease is lost, and the
// Box ends, when a renewal finds another revision (the lease expired, or
// someone removed or took it), or when renewals keep failing (no quorum, a
// leader being elected) until the lease has run out. Between, a failed
// renewal is retried at the next tick: a leader election must not end
// every POP3 session of the cluster.
func (b *Box) refresher() {
	t := time.NewTimer(b.s.ttl() / 3)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-b.s.stop:
			return
		case <-t.C:
		}
		period := b.s.ttl() / 3 // the bucket's TTL may have changed
		t.Reset(period)
		ctx, cancel := context.WithTimeout(context.Background(), period)
		err := b.renew(ctx)
		cancel()
		if err != nil && (lostLease(err) || time.Now().After(b.expiry())) {
			b.mu.Lock()
			b.ended = true
			b.mu.Unlock()
			b.s.log.Warn("mailbox lease lost", zap.String(logvocab.User, b.user), zap.String("node", b.s.node), zap.Error(err))
			return
		}
	}
}

// lostLease says whether a renewal's error shows the lease is no longer
// ours: the key's revision is not the one we hold (JetStream's "wrong last
// sequence", which the KV library reports as ErrKeyExists).
func lostLease(err error) bool { return errors.Is(err, jetstream.ErrKeyExists) }

func (b *Box) expiry() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.expires
}

// renew updates the lease at its revision, which also restarts its TTL.
func (b *Box) renew(ctx context.Context) error {
	b.mu.Lock()
	rev := b.rev
	b.mu.Unlock()
	start := time.Now()
	next, err := b.s.locks.Update(ctx, b.key, b.holder, rev)
	if err != nil {
		return fmt.Errorf("jsbox: renew lease of %s: %w", b.user, err)
	}
	b.mu.Lock()
	b.rev = next
	b.expires = start.Add(b.s.ttl())
	b.mu.Unlock()
	return nil
}

// listing reads the subject's messages present now, oldest first, headers
// only.
func (s *Store) listing(ctx context.Context, subj string) ([]entry, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("jsbox: count messages: %w", err)
	}
	n := int(info.State.Subjects[subj])
	if n == 0 {
		return nil, nil
	}
	cons, err := s.js.OrderedConsumer(ctx, s.name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		HeadersOnly:    true,
		// Deleted below; this bounds how long one lingers if that fails
		// (the library's default is 5 minutes: thousands of logins a
		// minute would leave thousands of idle consumers on the server).
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("jsbox: list: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(n, 256)))
	if err != nil {
		return nil, fmt.Errorf("jsbox: list: %w", err)
	}
	defer s.dropConsumer(cons, it)
	ctx, cancel := context.WithTimeout(ctx, listWait)
	defer cancel()
	list := make([]entry, 0, n)
	for len(list) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("jsbox: list: read %d of %d messages: %w", len(list), n, err)
		}
		e, err := parseEntry(m)
		if err != nil {
			return nil, err
		}
		list = append(list, e)
	}
	return list, nil
}

// dropConsumer stops a listing's iterator and deletes its consumer at once
// (best effort: the server removes it after consumerIdle anyway).
func (s *Store) dropConsumer(cons jetstream.Consumer, it jetstream.MessagesContext) {
	it.Stop()
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseWait)
	defer cancel()
	if err := s.stream.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("listing consumer not deleted", zap.String("consumer", info.Name), zap.Error(err))
	}
}

// parseEntry reads a listed message's headers.
func parseEntry(m jetstream.Msg) (entry, error) {
	md, err := m.Metadata()
	if err != nil {
		return entry{}, fmt.Errorf("jsbox: list: %w", err)
	}
	h := m.Headers()
	size, err := strconv.ParseInt(h.Get(hdrSize), 10, 64)
	if err != nil || size < 0 {
		return entry{}, fmt.Errorf("jsbox: message %d: bad %s %q", md.Sequence.Stream, hdrSize, h.Get(hdrSize))
	}
	seq := md.Sequence.Stream
	return entry{
		info: mailbox.Info{Size: size, UID: strconv.FormatUint(seq, 10), MsgID: h.Get(hdrMsgID)},
		seq:  seq,
		obj:  h.Get(hdrObject),
	}, nil
}

// List returns the listing, oldest delivery first, fixed for the session.
func (b *Box) List() []mailbox.Info {
	out := make([]mailbox.Info, len(b.list))
	for i, e := range b.list {
		out[i] = e.info
	}
	return out
}

// live says whether b may still read: not ended, and its lease not run
// out. The refresher notices a lost lease only when a renewal fails, up to
// a third of the TTL after it ran out, while another node's session may
// hold the lease and have deleted what b would read.
func (b *Box) live() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.ended && time.Now().Before(b.expires)
}

// Open returns the content of message i (0-based index into List()): the
// stream message's data, or the object streamed.
func (b *Box) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if !b.live() {
		return nil, mailbox.ErrDone
	}
	if i < 0 || i >= len(b.list) {
		return nil, fmt.Errorf("jsbox: no message %d (have %d)", i, len(b.list))
	}
	e := b.list[i]
	if e.obj != "" {
		r, err := jsobj.Open(ctx, b.s.js, b.s.objs, "GOMTA_MBOBJ_"+b.s.token, e.obj)
		if err != nil {
			return nil, fmt.Errorf("jsbox: object of message %d: %w", e.seq, err)
		}
		return r, nil
	}
	m, err := b.s.stream.GetMsg(ctx, e.seq)
	if err != nil {
		return nil, fmt.Errorf("jsbox: message %d: %w", e.seq, err)
	}
	return io.NopCloser(bytes.NewReader(m.Data)), nil
}

// end marks b ended and stops its refresher; false when it had ended.
func (b *Box) end() bool {
	b.mu.Lock()
	was := b.ended
	b.ended = true
	b.mu.Unlock()
	b.quitOnce.Do(func() { close(b.quit) })
	b.refresh.Wait()
	return !was
}

// Commit deletes the messages at the given 0-based indexes (and their
// objects), then releases the lease (RFC 1939 UPDATE state). It first
// renews the lease: a Box whose lease is gone deletes nothing and returns
// mailbox.ErrDone. Nil only when every deletion is acknowledged. With
// nothing to delete it only releases the lease: there is nothing a lost
// lease could spoil, and a renewal failing during a leader election must
// not turn a plain QUIT into -ERR.
func (b *Box) Commit(ctx context.Context, deleted []int) error {
	if !b.end() {
		return mailbox.ErrDone
	}
	if len(deleted) == 0 {
		b.release()
		return nil
	}
	for _, i := range deleted {
		if i < 0 || i >= len(b.list) {
			b.release()
			return fmt.Errorf("jsbox: commit: no message %d (have %d)", i, len(b.list))
		}
	}
	if err := b.renew(ctx); err != nil {
		if lostLease(err) || time.Now().After(b.expiry()) {
			b.s.log.Warn("mailbox lease lost", zap.String(logvocab.User, b.user), zap.String("node", b.s.node), zap.Error(err))
			return fmt.Errorf("%w: %w", mailbox.ErrDone, err)
		}
		// Not known to be lost, but not confirmed either: delete nothing.
		b.release()
		return err
	}
	seen := make(map[int]bool, len(deleted))
	for _, i := range deleted {
		if seen[i] {
			continue
		}
		seen[i] = true
		if err := b.remove(ctx, b.list[i]); err != nil {
			b.release()
			return err
		}
	}
	b.release()
	return nil
}

// remove deletes one message, then its object. A message already gone (a
// Commit retried) is not an error.
func (b *Box) remove(ctx context.Context, e entry) error {
	err := b.s.stream.DeleteMsg(ctx, e.seq)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("jsbox: delete message %d: %w", e.seq, err)
	}
	if e.obj != "" {
		err := b.s.objs.Delete(ctx, e.obj)
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("jsbox: delete object of message %d: %w", e.seq, err)
		}
	}
	return nil
}

// Close releases the lease and deletes nothing. It is idempotent and a
// no-op after Commit.
func (b *Box) Close() {
	if b.end() {
		b.release()
	}
}

// release deletes the lease key at the revision this Box holds, so that a
// lease another session took since is never removed.
func (b *Box) release() {
	ctx, cancel := context.WithTimeout(context.Background(), releaseWait)
	defer cancel()
	b.mu.Lock()
	rev := b.rev
	b.mu.Unlock()
	if err := b.s.locks.Delete(ctx, b.key, jetstream.LastRevision(rev)); err != nil {
		b.s.log.Warn("mailbox lease not released", zap.String(logvocab.User, b.user), zap.String("node", b.s.node), zap.Error(err))
	}
}
