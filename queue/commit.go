package queue

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// groupCommitter is the group commit of add records: whoever arrives while
// no batch is in progress leads; everyone arriving meanwhile waits in
// pending; when a batch is done its leader hands the lead to the first
// waiter, which commits all the waiters in one batch. So however many
// sessions commit at once, a batch costs what flush costs once. (The bodies
// are fsync'd by each session before it joins, in parallel.)
type groupCommitter struct {
	// flush makes one batch of add records durable; on error none of them
	// may count as committed. It is Queue.commitBatch.
	flush func(recs []rec) error

	mu      sync.Mutex
	pending []*commitReq
	busy    bool // a leader is running a batch
}

type commitReq struct {
	rec rec
	ch  chan verdict // buffered 1
}

type verdict struct {
	lead bool // take the lead instead of a result
	err  error
}

func newGroupCommitter(flush func([]rec) error) *groupCommitter {
	return &groupCommitter{flush: flush}
}

// commit makes r durable together with the records of every other commit
// in flight, and returns once its batch is flushed.
func (c *groupCommitter) commit(r rec) error {
	req := &commitReq{rec: r, ch: make(chan verdict, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, req)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	if !lead {
		if v := <-req.ch; !v.lead {
			return v.err
		}
	}
	c.mu.Lock()
	batch := c.pending
	c.pending = nil
	c.mu.Unlock()

	c.run(batch) // answers req too

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		c.mu.Unlock()
		next.ch <- verdict{lead: true}
	} else {
		c.busy = false
		c.mu.Unlock()
	}
	return (<-req.ch).err
}

// run flushes one batch and answers every request in it.
func (c *groupCommitter) run(batch []*commitReq) {
	recs := make([]rec, len(batch))
	for i, r := range batch {
		recs[i] = r.rec
	}
	err := c.flush(recs)
	for _, r := range batch {
		r.ch <- verdict{err: err}
	}
}

// commitBatch is the group committer's flush: one fsync of msg/ for the
// bodies' names, one write(2) of the add records and one fdatasync of the
// journal. A panic fails the batch rather than the process.
func (q *Queue) commitBatch(recs []rec) (err error) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in group commit", zap.Any("error", p), zap.Stack("stack"))
			err = fmt.Errorf("queue: panic in group commit: %v", p)
		}
	}()
	// Bodies first: an add record is never durable before its body's
	// directory entry.
	start := time.Now()
	if err := syncDir(q.msgDir); err != nil {
		return err
	}
	fsync := time.Since(start)
	off, err := q.j.append(recs...)
	if err != nil {
		return err
	}
	start = time.Now()
	err = q.j.syncTo(off)
	q.metrics.Committed(len(recs), fsync+time.Since(start))
	if err != nil {
		// The Commits fail and their bodies go: take the records back
		// (best effort; at load an add without its body is dropped).
		undo := make([]rec, len(recs))
		for i, r := range recs {
			undo[i] = rec{kind: recDone, id: r.id}
		}
		_, _ = q.j.append(undo...)
		return err
	}
	return nil
}
