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
