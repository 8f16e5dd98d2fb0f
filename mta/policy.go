package mta

import (
	"context"
	"errors"
	"io"

	"gomta/delivery/mailbox"
	"gomta/queue"
	"gomta/session/address"
	"gomta/session/pop3"
	"gomta/session/reply"
	"gomta/session/smtp"
)

// Replies of the relay policy (ARCHITECTURE.md "Who may send what").
var (
	// RFC 5321 §4.2.2 550, RFC 3463 §3.2 X.1.0 "other address status":
	// a sender claiming this host's domain that is no account of it.
	replyBadLocalSender = &reply.Reply{Code: reply.CodeRejected, Enhanced: reply.EnhBadAddress, Text: "sender address rejected: no such account here"}
	// RFC 4954 §6 / RFC 3463 X.7.1: a local sender from an untrusted,
	// unauthenticated client, or an authenticated one sending as another user.
	replySenderNotOwned = &reply.Reply{Code: reply.CodeNameNotAllow, Enhanced: reply.EnhNotAuthorized, Text: "sender address not owned by this client"}
	// RFC 3463 §3.2 X.1.1 "bad destination mailbox address".
	replyNoSuchUser = &reply.Reply{Code: reply.CodeRejected, Enhanced: reply.EnhNoSuchUser, Text: "no such user here"}
	// RFC 5321 §3.6.2, RFC 3463 X.7.1: never an open relay.
	replyRelayDenied = &reply.Reply{Code: reply.CodeTxFailed, Enhanced: reply.EnhNotAuthorized, Text: "relay access denied"}
	// RFC 5321 §4.2.2 452, RFC 3463 X.3.1 "mail system full".
	replyQueueFull = &reply.Reply{Code: reply.CodeInsufficient, Enhanced: reply.EnhSystemFull, Text: "queue full, try again later"}
)

// smtpBackend is the relay policy and message sink of one host's SMTP sessions.
type smtpBackend struct{ h *Host }

// Mail implements smtp.Backend.
func (b smtpBackend) Mail(_ context.Context, c *smtp.Peer, from string) error {
	if from == "" {
		return nil // the null sender: local recipients only, unless authenticated (see Rcpt)
	}
	if c.AuthUser != "" && address.Account(c.AuthUser) != address.Account(from) {
		return replySenderNotOwned
	}
	hc := b.h.live.Load()
	if !hc.isLocal(address.Domain(from)) {
		return nil
	}
	if _, ok := hc.account(from); !ok {
		return replyBadLocalSender
	}
	if !c.Trusted && c.AuthUser == "" {
		return replySenderNotOwned
	}
	return nil
}

// Rcpt implements smtp.Backend.
func (b smtpBackend) Rcpt(_ context.Context, c *smtp.Peer, from, rcpt string) error {
	if _, local, ok := b.h.canonicalRcpt(rcpt); local {
		if !ok {
			return replyNoSuchUser
		}
		return nil
	}
	if c.AuthUser != "" {
		return nil // any sender the session may use, the null one too (auto-replies, receipts)
	}
	if from == "" {
		return replyRelayDenied // an unauthenticated bounce goes to local recipients only
	}
	if _, ok := b.h.account(from); ok && c.Trusted {
		return nil
	}
	return replyRelayDenied
}

// canonicalRcpt is the one canonical form of a recipient: the relay policy
// decides on it and the envelope is de-duplicated by it, so that a mailbox
// gets one copy however its address was written.
//   - A local address is its account as configured, found as the account
//     lookup finds it (address.Account).
//   - <Postmaster> without a domain, and postmaster@ a local domain that has
//     no account of that name, are the host's postmaster account.
//   - A remote address is address.Canonical: its domain folded, its local
//     part as given.
//
// local says whether the address is this host's; ok=false is a local address
// that names no account.
func (h *Host) canonicalRcpt(addr string) (canon string, local, ok bool) {
	c := h.live.Load()
	_, domain, hasDomain := address.Split(addr)
	if hasDomain && !c.isLocal(domain) {
		return address.Canonical(addr), false, true
	}
	if hasDomain { // without a domain, the session's parser lets only <Postmaster> through
		if a, ok := c.account(addr); ok {
			return a, true, true
		}
	}
	if address.IsPostmaster(addr) && c.srv.Postmaster != "" {
		return c.srv.Postmaster, true, true
	}
	return addr, true, false
}

// envelope is the recipient list that is committed to the queue: each
// accepted recipient in its canonical form, repeats dropped, in the order
// they were first given.
func (h *Host) envelope(rcpts []string) []string {
	out := make([]string, 0, len(rcpts))
	seen := make(map[string]bool, len(rcpts))
	for _, r := range rcpts {
		c, _, _ := h.canonicalRcpt(r)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// NewMessage implements smtp.Backend.
func (b smtpBackend) NewMessage(ctx context.Context, _ *smtp.Peer) (smtp.MessageWriter, error) {
	d, err := b.h.Queue.NewMessage(ctx)
	if errors.Is(err, queue.ErrFull) {
		return nil, replyQueueFull
	}
	if err != nil {
		return nil, err
	}
	ed := &envelopeDraft{Writer: d, envelope: b.h.envelope}
	if _, ok := d.(traceWriter); ok {
		if l, ok := b.h.Mailboxes.(linker); ok && l.LinksTrace() {
			ed.traceFor = b.h.traceFor
		}
	}
	return ed, nil
}

// pop3Backend authenticates a host's accounts and opens their mailboxes.
type pop3Backend struct{ h *Host }

// Login implements pop3.Backend.
func (b pop3Backend) Login(_ context.Context, user, pass string) error {
	if !b.h.checkPassword(user, pass) {
		return pop3.ErrAuth
	}
	return nil
}

// Open implements pop3.Backend.
func (b pop3Backend) Open(ctx context.Context, user string) (pop3.Maildrop, error) {
	acct, ok := b.h.account(user)
	if !ok {
		return nil, pop3.ErrAuth
	}
	s, err := b.h.Mailboxes.Open(ctx, acct)
	switch {
	case errors.Is(err, mailbox.ErrInUse):
		return nil, pop3.ErrInUse
	case errors.Is(err, mailbox.ErrNoUser):
		return nil, pop3.ErrAuth
	case err != nil:
		return nil, err
	}
	return maildrop{s}, nil
}

// maildrop adapts a mailbox session to pop3.Maildrop.
type maildrop struct{ s mailbox.Box }

func (m maildrop) List() []pop3.MsgInfo {
	l := m.s.List()
	out := make([]pop3.MsgInfo, len(l))
	for i, x := range l {
		out[i] = pop3.MsgInfo{Size: x.Size, UID: x.UID, MsgID: x.MsgID}
	}
	return out
}

func (m maildrop) Open(ctx context.Context, i int) (io.ReadCloser, error) { return m.s.Open(ctx, i) }
func (m maildrop) Commit(ctx context.Context, del []int) error            { return m.s.Commit(ctx, del) }
func (m maildrop) Close()                                                 { m.s.Close() }
