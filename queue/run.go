package queue

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// entry is the scheduler's state of one message. Only Run's goroutine
// touches it; while busy, the envelope belongs to the attempt in progress.
type entry struct {
	env     *envelope
	due     time.Time
	busy    bool
	pending *pending // control actions for the end of the attempt (control_run.go)
}

// outcome is what an attempt sends back to Run, after it has persisted it.
type outcome struct {
	id  string
	env *envelope // nil: the message is gone from the spool
}

// scheduler is the state Run owns.
type scheduler struct {
	q       *Queue
	h       Handler
	entries map[string]*entry
	due     dueHeap
	busy    int          // attempts in progress, at most q.workers
	results chan outcome // capacity q.workers: an attempt never blocks sending
	gauges  *gauges      // the schedule's counts, for the metrics
}

// Run loads the spool, then delivers every message when it is due through h,
// at most Workers attempts at once, until ctx is done. It then waits for the
// attempts in progress (their ctx is ctx) and returns nil. It returns an error
// only when the spool cannot be read, or when Run is already running.
func (q *Queue) Run(ctx context.Context, h Handler) error {
	if !q.inRun.CompareAndSwap(false, true) {
		return errors.New("queue: Run is already running")
	}
	defer q.inRun.Store(false)
	s := &scheduler{
		q:       q,
		h:       h,
		entries: make(map[string]*entry),
		results: make(chan outcome, q.workers),
		gauges:  newGauges(q.metrics),
	}
	if err := s.load(); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	comp := newCompaction()
	for {
		s.dispatch(ctx)
		s.arm(timer)
		s.gauges.publish(s.entries)
		comp.maybeStart(q)
		select {
		case <-ctx.Done():
			for s.busy > 0 {
				s.apply(ctx, <-s.results)
			}
			comp.wait()
			// The messages stay on disk; the next Run counts them again.
			q.count.Add(-int64(len(s.entries)))
			s.gauges.reset()
			return nil
		case <-q.kick:
			s.takeInbox()
		case o := <-s.results:
			s.apply(ctx, o)
		case r := <-q.ctl:
			r.do(ctx, s)
			close(r.done)
		case err := <-comp.done:
			comp.finished(err)
		case <-timer.C:
		}
	}
}

// takeInbox schedules the messages committed since the last look.
func (s *scheduler) takeInbox() {
	s.q.mu.Lock()
	inbox := s.q.inbox
	s.q.inbox = nil
	s.q.mu.Unlock()
	now := time.Now()
	for _, env := range inbox {
		s.add(env, now)
	}
}

// add schedules a message (already counted) at its next attempt, now if
// overdue; a held message is scheduled only when released.
func (s *scheduler) add(env *envelope, now time.Time) {
	if _, ok := s.entries[env.ID]; ok {
		s.q.release() // cannot happen: load and inbox are disjoint
		return
	}
	due := env.Next
	if due.Before(now) {
		due = now
	}
	e := &entry{env: env, due: due}
	s.entries[env.ID] = e
	s.gauges.enter(e)
	if env.Held {
		return
	}
	heap.Push(&s.due, dueItem{due: due, id: env.ID})
}

// apply takes an attempt's outcome, already on disk, into the schedule, then
// the control actions asked for meanwhile.
func (s *scheduler) apply(ctx context.Context, o outcome) {
	s.busy--
	e := s.entries[o.id]
	if e == nil {
		return
	}
	from := stateOf(e)
	if o.env == nil {
		delete(s.entries, o.id)
		s.gauges.leave(from)
		s.q.release()
		return
	}
	e.env, e.busy, e.due = o.env, false, o.env.Next
	s.gauges.move(from, stateOf(e))
	if !e.env.Held {
		heap.Push(&s.due, dueItem{due: e.due, id: o.id})
	}
	s.applyPending(ctx, e)
}

// dispatch starts attempts for the due messages while workers are free.
func (s *scheduler) dispatch(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	for s.busy < s.q.workers {
		e := s.top()
		if e == nil || e.due.After(now) {
			return
		}
		heap.Pop(&s.due)
		from := stateOf(e)
		e.busy = true
		s.gauges.move(from, stateOf(e))
		s.busy++
		env := *e.env
		env.Rcpts = slices.Clone(env.Rcpts)
		go s.q.attempt(ctx, s.h, env, s.results)
	}
}

// top returns the entry of the earliest live heap item, dropping stale ones.
func (s *scheduler) top() *entry {
	for len(s.due) > 0 {
		it := s.due[0]
		if e := s.entries[it.id]; e != nil && !e.busy && !e.env.Held && e.due.Equal(it.due) {
			return e
		}
		heap.Pop(&s.due)
	}
	return nil
}

// arm sets the timer for the next due message, if a worker is free for it.
func (s *scheduler) arm(t *time.Timer) {
	t.Stop()
	if s.busy >= s.q.workers {
		return // a result wakes the loop first
	}
	if e := s.top(); e != nil {
		t.Reset(time.Until(e.due))
	}
}

// dueItem is one heap entry; an item is stale when its entry's due changed.
type dueItem struct {
	due time.Time
	id  string
}

// dueHeap orders by due time, then id (acceptance order).
type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if c := h[i].due.Compare(h[j].due); c != 0 {
		return c < 0
	}
	return strings.Compare(h[i].id, h[j].id) < 0
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
