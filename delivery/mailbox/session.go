package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Info is one message of a session's listing.
type Info struct {
	Size int64  // exact octets (the file size; CRLF line endings as delivered)
	UID  string // unique id for POP3 UIDL (RFC 1939 §7), stable across sessions
	// MsgID is the queue's msg_id of the message, read from its file name;
	// "" for a message delivered by another tool or an older version.
	MsgID string
}

// Session is one POP3 session's hold on a mailbox: the lock and a listing
// fixed at Open. It is meant for one goroutine (the POP3 session); Close may
// be called from anywhere, any number of times.
type Session struct {
	a     *actor
	list  []entry // written by the actor before Open returns; read-only after
	moved bool    // Open moved messages from new/ to cur/
	ended atomic.Bool
}

// List returns the listing, oldest delivery first, fixed for the session.
func (ss *Session) List() []Info {
	out := make([]Info, len(ss.list))
	for i, e := range ss.list {
		out[i] = e.info
	}
	return out
}

// Open returns the content of message i (0-based index into List()).
// Reading needs no request to the actor: only this session may delete the
// file while it holds the lock.
func (ss *Session) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if ss.ended.Load() {
		return nil, ErrDone
	}
	if i < 0 || i >= len(ss.list) {
		return nil, fmt.Errorf("mailbox: no message %d (have %d)", i, len(ss.list))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := &ss.list[i]
	f, err := os.Open(filepath.Join(e.dir, e.file))
	if errors.Is(err, os.ErrNotExist) {
		if p, ok := e.find(); ok {
			f, err = os.Open(p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox: open message %s: %w", e.base, err)
	}
	return f, nil
}

// Commit durably removes the messages at the given 0-based indexes and
// releases the lock (RFC 1939 UPDATE state). The lock is released even when
// ctx ends or an index is invalid (then nothing is removed).
func (ss *Session) Commit(ctx context.Context, deleted []int) error {
	if ss.ended.Load() {
		return ErrDone
	}
	seen := make(map[int]bool, len(deleted))
	del := make([]int, 0, len(deleted))
	for _, i := range deleted {
		if i < 0 || i >= len(ss.list) {
			ss.Close()
			return fmt.Errorf("mailbox: commit: no message %d (have %d)", i, len(ss.list))
		}
		if !seen[i] {
			seen[i] = true
			del = append(del, i)
		}
	}
	req := &commitReq{ss: ss, del: del, reply: make(chan error, 1)}
	if err := ss.a.send(ctx, req); err != nil {
		ss.Close()
		return err
	}
	var err error
	select {
	case err = <-req.reply:
		ss.ended.Store(true)
	case <-ctx.Done():
		// The actor has the request and releases the lock when done.
		ss.ended.Store(true)
		err = ctx.Err()
	}
	return err
}

// Close releases the lock and deletes nothing. It is idempotent and a no-op
// after Commit.
func (ss *Session) Close() {
	if ss.ended.Swap(true) {
		return
	}
	req := &closeReq{ss: ss, reply: make(chan error, 1)}
	a := ss.a
	select {
	case a.reqs <- req:
	case <-a.s.done:
		return
	}
	select {
	case <-req.reply:
	case <-a.s.done:
	}
}

// Box is one POP3 session's hold on a mailbox, whatever keeps it: a
// Session of this package's Maildirs or a replicated mailbox (package
// delivery/mailbox/jsbox). The listing is fixed at open; Commit removes
// the given messages (0-based indexes) durably and releases the hold.
type Box interface {
	List() []Info
	Open(ctx context.Context, i int) (io.ReadCloser, error)
	Commit(ctx context.Context, deleted []int) error
	Close()
}

// Backend is what a mail host asks of its mailboxes: Store (Maildirs, via
// AsBackend) or the replicated one on NATS JetStream (jsbox). Open returns
// ErrNoUser for an unknown user and ErrInUse when another POP3 session
// holds the mailbox; Add makes the mailboxes of new accounts; Run serves
// until ctx ends.
type Backend interface {
	Deliver(ctx context.Context, d Delivery) error
	Open(ctx context.Context, user string) (Box, error)
	Add(users []string) error
	Run(ctx context.Context) error
}

// AsBackend returns s as a Backend.
func (s *Store) AsBackend() Backend { return storeBackend{s} }

type storeBackend struct{ *Store }

func (b storeBackend) Open(ctx context.Context, user string) (Box, error) {
	ss, err := b.Store.Open(ctx, user)
	if err != nil {
		return nil, err
	}
	return ss, nil
}
