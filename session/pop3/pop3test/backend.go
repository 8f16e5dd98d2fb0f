// Package pop3test provides an in-memory pop3.Backend, and a real server on
// loopback over any backend (Start), for tests of the POP3 server, the POP3
// client and anything that drives them. It owns nothing on
// disk; a mutex guards its maps (it is a test double, not an actor).
package pop3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"gomta/session/pop3"
)

// Backend is an in-memory set of accounts with maildrops. The zero value is
// not usable; call New.
type Backend struct {
	mu      sync.Mutex
	users   map[string]*account
	nextUID int

	// CommitErr, when set, makes every Commit fail with it (nothing removed).
	CommitErr error
	// OpenHook, when set, runs at the start of every Maildrop.Open; a non-nil
	// error is returned from Open. It may block (honouring ctx).
	OpenHook func(ctx context.Context, user string, i int) error
}

type account struct {
	pass   string
	msgs   []message
	locked bool
	free   chan struct{} // closed when the current lock is released
	closes int           // Maildrop.Close calls
}

type message struct {
	uid   string
	msgID string
	data  []byte
}

// New returns an empty Backend.
func New() *Backend { return &Backend{users: make(map[string]*account)} }

// AddUser creates an account with an empty maildrop.
func (b *Backend) AddUser(user, pass string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	closed := make(chan struct{})
	close(closed)
	b.users[user] = &account{pass: pass, free: closed}
}

// Add appends a message to user's maildrop and returns its UID, uid-NNNN;
// the listing gives it the msg_id msg-NNNN.
func (b *Backend) Add(user string, data []byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextUID++
	uid := fmt.Sprintf("uid-%04d", b.nextUID)
	a := b.users[user]
	a.msgs = append(a.msgs, message{uid: uid, msgID: fmt.Sprintf("msg-%04d", b.nextUID), data: bytes.Clone(data)})
	return uid
}

// Messages returns a copy of user's stored messages, in order.
func (b *Backend) Messages(user string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]byte
	for _, m := range b.users[user].msgs {
		out = append(out, bytes.Clone(m.data))
	}
	return out
}

// Locked reports whether a session holds user's maildrop.
func (b *Backend) Locked(user string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.users[user].locked
}

// Closes returns how many times Maildrop.Close released user's maildrop.
func (b *Backend) Closes(user string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.users[user].closes
}

// Released returns a channel closed once user's maildrop is not locked
// (already closed if it is free now).
func (b *Backend) Released(user string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.users[user].free
}

// Login implements pop3.Backend.
func (b *Backend) Login(_ context.Context, user, pass string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.users[user]
	if !ok || a.pass != pass {
		return pop3.ErrAuth
	}
	return nil
}

// Open implements pop3.Backend.
func (b *Backend) Open(_ context.Context, user string) (pop3.Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.users[user]
	if !ok {
		return nil, pop3.ErrAuth
	}
	if a.locked {
		return nil, pop3.ErrInUse
	}
	a.locked = true
	a.free = make(chan struct{})
	return &maildrop{b: b, user: user, a: a, msgs: slices.Clone(a.msgs)}, nil
}

type maildrop struct {
	b    *Backend
	user string
	a    *account
	msgs []message // snapshot at Open
	done bool
}

func (m *maildrop) List() []pop3.MsgInfo {
	out := make([]pop3.MsgInfo, len(m.msgs))
	for i, msg := range m.msgs {
		out[i] = pop3.MsgInfo{Size: int64(len(msg.data)), UID: msg.uid, MsgID: msg.msgID}
	}
	return out
}

func (m *maildrop) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if hook := m.b.hook(); hook != nil {
		if err := hook(ctx, m.user, i); err != nil {
			return nil, err
		}
	}
	if i < 0 || i >= len(m.msgs) {
		return nil, fmt.Errorf("pop3test: no message %d", i)
	}
	return io.NopCloser(bytes.NewReader(m.msgs[i].data)), nil
}

func (b *Backend) hook() func(context.Context, string, int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.OpenHook
}

func (m *maildrop) Commit(_ context.Context, deleted []int) error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	if m.b.CommitErr != nil {
		return m.b.CommitErr
	}
	gone := make(map[string]bool)
	for _, i := range deleted {
		gone[m.msgs[i].uid] = true
	}
	m.a.msgs = slices.DeleteFunc(m.a.msgs, func(msg message) bool { return gone[msg.uid] })
	m.release()
	return nil
}

func (m *maildrop) Close() {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	if !m.done {
		m.a.closes++
	}
	m.release()
}

// release unlocks the account once; m.b.mu is held.
func (m *maildrop) release() {
	if m.done {
		return
	}
	m.done = true
	m.a.locked = false
	close(m.a.free)
}
