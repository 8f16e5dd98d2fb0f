package queue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// errNoResult is the temporary failure of a recipient the Handler gave no
// Result for.
var errNoResult = errors.New("queue: no delivery result for recipient")

// entry is the scheduler's state of one message. Only Run's goroutine
// touches it; while busy, the envelope belongs to the attempt in progress.
type entry struct {
	env  *envelope
	due  time.Time
	busy bool
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
	}
	if err := s.load(); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	compacted := make(chan error, 1)
	compacting := false
	var compactAfter time.Time // after a failure, not again at once
	for {
		s.dispatch(ctx)
		s.arm(timer)
		if !compacting && q.j.needCompact() && time.Now().After(compactAfter) {
			compacting = true
			go q.compact(compacted)
		}
		select {
		case <-ctx.Done():
			for s.busy > 0 {
				s.apply(<-s.results)
			}
			if compacting {
				<-compacted
			}
			// The messages stay on disk; the next Run counts them again.
			q.count.Add(-int64(len(s.entries)))
			return nil
		case <-q.kick:
			s.takeInbox()
		case o := <-s.results:
			s.apply(o)
		case err := <-compacted:
			compacting = false
			if err != nil {
				compactAfter = time.Now().Add(time.Minute)
			}
		case <-timer.C:
		}
	}
}

// compact runs a journal compaction in its own goroutine (commits, attempts
// and Run go on meanwhile) and sends its error to done when it is over.
func (q *Queue) compact(done chan<- error) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in journal compaction", zap.Any("error", p), zap.Stack("stack"))
			err = fmt.Errorf("queue: panic in journal compaction: %v", p)
		}
		done <- err
	}()
	start := time.Now()
	var live int
	var after int64
	live, after, err = q.j.compact()
	if err != nil {
		q.log.Error("journal compaction failed", zap.Error(err))
		return
	}
	q.log.Info("journal compacted", zap.Int64("bytes", after), zap.Int("count", live),
		zap.Int64("duration_ms", time.Since(start).Milliseconds()))
}

// load cleans the spool of what no Commit finished and schedules every
// message in it, plus the ones committed since.
func (s *scheduler) load() error {
	q := s.q
	msgNames, err := listDir(q.msgDir)
	if err != nil {
		return fmt.Errorf("queue: load: %w", err)
	}
	tmpNames, err := listDir(q.tmpDir)
	if err != nil {
		return fmt.Errorf("queue: load: %w", err)
	}

	// Under mu, drafts and inbox are a consistent picture of this Queue's own
	// messages: an id leaves drafts and enters inbox in one critical section,
	// and its add record is appended while it is still a draft.
	q.mu.Lock()
	inbox := q.inbox
	q.inbox = nil
	ours := make(map[string]bool, len(q.drafts)+len(inbox))
	for id := range q.drafts {
		ours[id] = true
	}
	for _, env := range inbox {
		ours[env.ID] = true
	}
	live := q.j.snapshot()
	var stale []string
	for _, n := range tmpNames {
		if !ours[idOf(n)] {
			stale = append(stale, q.tmpBody(n))
		}
	}
	for _, n := range msgNames {
		if _, ok := live[n]; validID(n) && !ok && !ours[n] {
			stale = append(stale, q.bodyPath(n))
		}
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			q.log.Warn("stale spool file not removed", zap.String("path", p), zap.Error(err))
		}
	}
	q.mu.Unlock()

	ids := make([]string, 0, len(live))
	for id := range live {
		if !ours[id] { // counted already; a draft mid-commit comes through inbox
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	now := time.Now()
	for _, id := range ids {
		env, err := q.checkEnvelope(id, live[id])
		switch {
		case errors.Is(err, errIncomplete):
			q.log.Warn("incomplete message removed", zap.String("msg_id", id), zap.Error(err))
			if err := q.remove(id); err != nil {
				q.log.Error("incomplete message not removed", zap.String("msg_id", id), zap.Error(err))
			}
			continue
		case err != nil:
			q.log.Error("envelope unreadable, message left in the spool", zap.String("msg_id", id), zap.Error(err))
			continue
		}
		q.count.Add(1)
		// Everything found in the spool at start is due now (a restart usually
		// follows a fix); the attempt count is kept, so the retry schedule
		// resumes where it was.
		env.Next = time.Time{}
		s.add(env, now)
	}
	for _, env := range inbox {
		s.add(env, now)
	}
	q.log.Info("spool loaded", zap.Int("count", len(s.entries)), zap.Int("stale_files", len(stale)))
	return nil
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

// add schedules a message (already counted) at its next attempt, now if overdue.
func (s *scheduler) add(env *envelope, now time.Time) {
	if _, ok := s.entries[env.ID]; ok {
		s.q.release() // cannot happen: load and inbox are disjoint
		return
	}
	due := env.Next
	if due.Before(now) {
		due = now
	}
	s.entries[env.ID] = &entry{env: env, due: due}
	heap.Push(&s.due, dueItem{due: due, id: env.ID})
}

// apply takes an attempt's outcome, already on disk, into the schedule.
func (s *scheduler) apply(o outcome) {
	s.busy--
	e := s.entries[o.id]
	if e == nil {
		return
	}
	if o.env == nil {
		delete(s.entries, o.id)
		s.q.release()
		return
	}
	e.env, e.busy, e.due = o.env, false, o.env.Next
	heap.Push(&s.due, dueItem{due: e.due, id: o.id})
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
		e.busy = true
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
		if e := s.entries[it.id]; e != nil && !e.busy && e.due.Equal(it.due) {
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

// attempt runs in a worker goroutine: one delivery attempt of env, whose
// outcome is persisted before it is sent to Run.
func (q *Queue) attempt(ctx context.Context, h Handler, env envelope, results chan<- outcome) {
	out := outcome{id: env.ID}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery attempt", zap.String("msg_id", env.ID),
				zap.Any("error", p), zap.Stack("stack"))
			e := env
			e.Attempts++
			e.Next = time.Now().Add(q.wait(e.Attempts))
			out.env = &e
		}
		results <- out
	}()
	n := env.Attempts + 1
	m := &Message{
		ID:       env.ID,
		From:     env.From,
		Rcpts:    slices.Clone(env.Rcpts),
		Received: env.Received,
		Attempt:  n,
		Final:    n > len(q.retry),
		BodyPath: q.bodyPath(env.ID),
		Size:     env.Size,
	}
	q.log.Debug("delivery attempt", zap.String("msg_id", env.ID), zap.Int("attempt", n),
		zap.Strings("rcpt", env.Rcpts), zap.Bool("final", m.Final))
	res := q.deliver(ctx, h, m, env.Rcpts)
	out.env = q.settle(&env, m, res)
}

// deliver calls h, turning a panic into a temporary failure of every recipient.
func (q *Queue) deliver(ctx context.Context, h Handler, m *Message, rcpts []string) (res []Result) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in delivery handler", zap.String("msg_id", m.ID),
				zap.Any("error", p), zap.Stack("stack"))
			err := fmt.Errorf("queue: delivery handler panicked: %v", p)
			res = make([]Result, len(rcpts))
			for i, r := range rcpts {
				res[i] = Result{Rcpt: r, Err: err}
			}
		}
	}()
	return h.Deliver(ctx, m)
}

// wait is the delay before attempt n+1 after attempt n failed.
func (q *Queue) wait(n int) time.Duration {
	switch {
	case len(q.retry) == 0:
		return time.Minute
	case n-1 < len(q.retry):
		return q.retry[max(n-1, 0)]
	default:
		return q.retry[len(q.retry)-1]
	}
}

// settle applies the results of attempt m to env and persists them: done
// recipients leave the envelope before anything else happens; the message
// is removed when none is left (or after the final attempt); otherwise the
// next attempt is scheduled. It returns nil when the message is gone.
func (q *Queue) settle(env *envelope, m *Message, res []Result) *envelope {
	got := make(map[string]error, len(res))
	for _, r := range res {
		if _, dup := got[r.Rcpt]; !dup {
			got[r.Rcpt] = r.Err
		}
	}
	var left []string
	errs := make(map[string]string)
	for _, rcpt := range env.Rcpts {
		err, ok := got[rcpt]
		if ok && err == nil {
			continue
		}
		if !ok {
			err = errNoResult
		}
		left = append(left, rcpt)
		errs[rcpt] = err.Error()
	}
	env.Attempts = m.Attempt
	log := q.log.With(zap.String("msg_id", env.ID))
	if len(left) == 0 || m.Final {
		for _, rcpt := range left {
			// The handler was told this was the last attempt and should
			// have bounced; it did not, so this recipient is lost.
			log.Error("temporary failure on the final attempt, recipient dropped",
				zap.String("rcpt", rcpt), zap.Int("attempt", m.Attempt), zap.String("error", errs[rcpt]))
		}
		if err := q.remove(env.ID); err != nil {
			log.Error("message not removed from the spool", zap.Error(err))
		}
		log.Info("message done", zap.Int("attempt", m.Attempt),
			zap.Int64("duration_ms", time.Since(env.Received).Milliseconds()))
		return nil
	}
	env.Rcpts, env.Errors = left, errs
	env.Next = time.Now().Add(q.wait(m.Attempt))
	if err := q.persist(env); err != nil {
		// Kept in memory; after a restart the last saved state is retried.
		log.Error("envelope not saved", zap.Error(err))
	}
	log.Info("retry scheduled", zap.Int("attempt", m.Attempt), zap.Time("next_attempt", env.Next),
		zap.Strings("rcpt", left), zap.String("error", errs[left[0]]))
	return env
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
