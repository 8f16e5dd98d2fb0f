package queue

import (
	"context"
	"io"
)

// Spool is what a mail host asks of its queue, whatever keeps it: the local
// spool of this package (Queue.AsSpool) or the replicated one on NATS
// JetStream (queue/jsq). Every method but NewMessage and Run is a control
// request (mtactl); the semantics are Queue's (doc.go).
type Spool interface {
	// NewMessage starts a message; ErrFull when the queue is full.
	NewMessage(ctx context.Context) (Writer, error)
	// Run delivers through h until ctx ends, then waits for the attempts
	// in progress.
	Run(ctx context.Context, h Handler) error
	List(ctx context.Context) ([]MessageInfo, error)
	Show(ctx context.Context, id string) (MessageInfo, error)
	Stats(ctx context.Context) (Stats, error)
	Retry(ctx context.Context, ids []string, all bool) ([]ActionResult, error)
	Hold(ctx context.Context, ids []string) ([]ActionResult, error)
	Release(ctx context.Context, ids []string) ([]ActionResult, error)
	Drop(ctx context.Context, ids []string, bounce bool) ([]ActionResult, error)
	// Len is the number of messages queued (drafts included).
	Len() int
	// OpenBody opens a queued message's body (ErrUnknown when none).
	OpenBody(id string) (io.ReadCloser, error)
}

// Writer is one message being received (a Draft of the local spool): it
// implements session/smtp.MessageWriter. Commit returns only once the
// message is durable as the backend promises; Abort throws it away.
type Writer interface {
	io.Writer
	ID() string
	SetParams(p Params)
	Commit(ctx context.Context, from string, rcpts []string) error
	Abort()
}

// AsSpool returns q as a Spool.
func (q *Queue) AsSpool() Spool { return localSpool{q} }

type localSpool struct{ *Queue }

func (s localSpool) NewMessage(ctx context.Context) (Writer, error) {
	d, err := s.Queue.NewMessage(ctx)
	if err != nil {
		return nil, err
	}
	return d, nil
}
