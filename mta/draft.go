package mta

import (
	"context"

	"gomta/queue"
)

// envelopeDraft is a queue draft that, at commit, puts the recipients in
// their canonical form, once each (envelope), and tells the SMTP session
// the recipients as queued, for its acceptance line (smtp.QueuedRcpts).
type envelopeDraft struct {
	*queue.Draft
	envelope func(rcpts []string) []string
	queued   []string
}

func (d *envelopeDraft) Commit(ctx context.Context, from string, rcpts []string) error {
	env := d.envelope(rcpts)
	if err := d.Draft.Commit(ctx, from, env); err != nil {
		return err
	}
	d.queued = env
	return nil
}

// QueuedRcpts implements smtp.QueuedRcpts.
func (d *envelopeDraft) QueuedRcpts() []string { return d.queued }
