package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Trace says that a body starts with the final delivery's trace fields
// (Return-Path and Delivered-To, RFC 5321 §4.4), written by the session at
// DATA because the message's only recipient is a local account: local
// delivery then hard-links the body into that account's Maildir instead of
// copying it after fresh trace fields (one inode and one file fsync per
// message). Every other reader skips the fields: Message.Open starts after
// them, so a relay or a bounce of such a message (the account removed or
// the domain made remote by a reload, the mailbox failing for good) never
// carries our Delivered-To onward.
//
// The body is shared with the Maildir once linked: it is never modified
// (it never is once committed), its mode stays 0440 (the committed mark;
// load takes 0400 for a draft), and its envelope copy (the extended
// attribute) is removed before the spool's name goes (dropCopy), so that the
// mailbox file does not carry the envelope for ever.
type Trace struct {
	Len int64  `json:"len"` // octets of the trace fields at the body's start
	To  string `json:"to"`  // the account the fields name (Delivered-To), folded
}

// WriteTrace writes the trace fields p, which name account to, as the very
// first octets of the body and records them in the envelope (Trace). It
// must come before any Write.
func (d *Draft) WriteTrace(p []byte, to string) error {
	if d.size != 0 || d.trace != nil {
		return errors.New("queue: trace fields after the body's first octet")
	}
	if _, err := d.Write(p); err != nil {
		return err
	}
	d.trace = &Trace{Len: int64(len(p)), To: to}
	return nil
}

// Open opens the body for reading, after the trace fields if it starts
// with some (Trace): what a relay or a report may carry. The reader also
// seeks (a relay scans the body, then rewinds it to send it): offset 0 is
// the first octet after the fields, so a rewind never brings them back.
func (m *Message) Open() (io.ReadCloser, error) {
	f, err := os.Open(m.BodyPath)
	if err != nil || m.Trace.Len == 0 {
		return f, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("queue: open %s: %w", m.ID, err)
	}
	if st.Size() < m.Trace.Len {
		f.Close()
		return nil, fmt.Errorf("queue: open %s: body of %d octets shorter than its trace fields (%d)", m.ID, st.Size(), m.Trace.Len)
	}
	return &tracedBody{SectionReader: io.NewSectionReader(f, m.Trace.Len, st.Size()-m.Trace.Len), f: f}, nil
}

// tracedBody is a body read past its trace fields: reads and seeks are
// relative to the first octet after them.
type tracedBody struct {
	*io.SectionReader
	f *os.File
}

func (b *tracedBody) Close() error { return b.f.Close() }

// traceOf is env's Trace, the zero Trace when it has none (a message with
// more than one recipient or a remote one, or written before Trace was).
func traceOf(env *envelope) Trace {
	if env.Trace == nil {
		return Trace{}
	}
	return *env.Trace
}

// removeEnv is remove for a message whose envelope is at hand: a body
// that may be linked into a Maildir loses its envelope copy first.
func (q *Queue) removeEnv(env *envelope) error {
	if env.Trace != nil {
		q.dropCopy(env.ID)
	}
	return q.remove(env.ID)
}

// dropCopy removes the envelope copy from a body that is done with, before
// its spool name goes: the inode may live on in a Maildir, which should not
// carry the envelope (ENVID, ORCPT, history) for ever. Best effort: a copy
// left behind costs privacy of the owner's own file, not correctness.
func (q *Queue) dropCopy(id string) {
	if q.xattr.Load() {
		_ = removeXattr(q.bodyPath(id), envXattr)
	}
}
