package mta

import (
	"context"

	"gomta/queue"
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
	queued   []string
	dsn      smtp.DSN
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
