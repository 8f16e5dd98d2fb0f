package jsq

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// TestCountWithoutQuorum: when the stream's count cannot be had (a server
// that never answers, as without quorum), every NewMessage gets its error
// within a bounded time, from one request shared by all of them, even
// with a ctx without deadline (a session's).
func TestCountWithoutQuorum(t *testing.T) {
	s := server(t)
	var calls atomic.Int32
	f := &faultJS{JetStream: s.JS}
	q := openQ(t, f, "n1", func(o *Options) { o.MaxMessages = 10 })
	f.info = func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done() // no answer until the caller gives up
		return ctx.Err()
	}
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() {
			w, err := q.NewMessage(context.Background())
			if err == nil {
				w.Abort()
			}
			errs <- err
		}()
	}
	for i := range n {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatalf("NewMessage %d succeeded without a count", i)
			}
		case <-time.After(mtatest.Deadline):
			t.Fatalf("NewMessage %d still waiting for the count", i)
		}
	}
	// Callers that came while a request was in flight, or while its error
	// was cached, made none of their own.
	if c := calls.Load(); c >= n {
		t.Fatalf("%d stream info requests for %d sessions", c, n)
	}
}
