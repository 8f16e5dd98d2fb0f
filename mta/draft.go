package mta

import (
	"context"

	"gomta/delivery/mailbox"
	"gomta/queue"
	"gomta/session/address"
	"gomta/session/smtp"
)

// envelopeDraft is a queue draft that, at commit, puts the recipients in
// their canonical form, once each (envelope), and tells the SMTP session
// the recipients as queued, for its acceptance line (smtp.QueuedRcpts). The
// session's DSN parameters (smtp.DSNWriter), keyed by recipient as given,
// are keyed by the same canonical form, so that they follow the recipient
// as queued.
type envelopeDraft struct {
	queue.Writer
	envelope func(rcpts []string) []string
	// traceFor gives the trace fields for the envelope when its only
	// recipient is a local account (Host.traceFor); nil: never (the queue
	// or the mailboxes cannot link, so the fields would save nothing).
	traceFor func(from string, rcpts []string) (fields []byte, account string, ok bool)
	queued   []string
	dsn      smtp.DSN
}

// traceWriter is a queue draft that can start with trace fields
// (queue.Draft.WriteTrace).
type traceWriter interface {
	WriteTrace(p []byte, to string) error
}

// linker is a mailbox backend that links a spool file starting with a
// mailbox's trace fields rather than copying it (mailbox.Store).
type linker interface{ LinksTrace() bool }

// WriteTrace implements smtp.TraceWriter: a message whose only recipient,
// canonical, is a local account starts with the Return-Path and
// Delivered-To its mailbox will have, so that local delivery hard-links
// the spool file instead of copying it (one inode and one file fsync per
// message); the queue records them and keeps them from relays and reports.
func (d *envelopeDraft) WriteTrace(from string, rcpts []string) (int, error) {
	if d.traceFor == nil {
		return 0, nil
	}
	fields, acct, ok := d.traceFor(from, rcpts)
	if !ok {
		return 0, nil
	}
	if err := d.Writer.(traceWriter).WriteTrace(fields, acct); err != nil {
		return 0, err
	}
	return len(fields), nil
}

// traceFor is the trace fields of a message from from to rcpts when its
// envelope holds one recipient, a local account (as the worker will find
// it at delivery, Worker.Account).
func (h *Host) traceFor(from string, rcpts []string) ([]byte, string, bool) {
	env := h.envelope(rcpts)
	if len(env) != 1 || !h.isLocal(address.Domain(env[0])) {
		return nil, "", false
	}
	acct, ok := h.account(env[0])
	if !ok {
		return nil, "", false
	}
	fields, account := mailbox.TraceFields(from, acct)
	return fields, account, true
}

// SetDSN implements smtp.DSNWriter.
func (d *envelopeDraft) SetDSN(p smtp.DSN) { d.dsn = p }

func (d *envelopeDraft) Commit(ctx context.Context, from string, rcpts []string) error {
	env := d.envelope(rcpts)
	if p := d.params(rcpts); p.Ret != "" || p.EnvID != "" || len(p.Rcpt) > 0 {
		d.Writer.SetParams(p)
	}
	if err := d.Writer.Commit(ctx, from, env); err != nil {
		return err
	}
	d.queued = env
	return nil
}

// params is the session's DSN parameters for the queue. A recipient given
// in two forms that fold to one keeps the parameters of the first given,
// as the session keeps the first of an exact repeat: rcpts is walked in
// order, never the map, whose order would make the choice random.
func (d *envelopeDraft) params(rcpts []string) queue.Params {
	p := queue.Params{Ret: d.dsn.Ret, EnvID: d.dsn.EnvID}
	seen := make(map[string]bool, len(rcpts))
	for _, rcpt := range rcpts {
		canon := d.envelope([]string{rcpt})[0]
		if seen[canon] {
			continue
		}
		seen[canon] = true
		rd, ok := d.dsn.Rcpts[rcpt]
		if !ok {
			continue
		}
		if p.Rcpt == nil {
			p.Rcpt = make(map[string]queue.RcptParams)
		}
		p.Rcpt[canon] = queue.RcptParams{Notify: rd.Notify, ORCPT: rd.ORCPT}
	}
	return p
}

// QueuedRcpts implements smtp.QueuedRcpts.
func (d *envelopeDraft) QueuedRcpts() []string { return d.queued }
