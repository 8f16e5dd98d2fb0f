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

// load cleans the spool of what no Commit finished, recovers or sets aside
// the bodies whose envelope is lost (recover.go), and schedules every
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
	var stale, orphans []string
	for _, n := range tmpNames {
		if !ours[idOf(n)] {
			stale = append(stale, q.tmpBody(n))
		}
	}
	for _, n := range msgNames {
		if _, ok := live[n]; validID(n) && !ok && !ours[n] {
			orphans = append(orphans, n)
		}
	}
	q.mu.Unlock()
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			q.log.Warn("stale spool file not removed", zap.String("path", p), zap.Error(err))
		}
	}

	ids := make([]string, 0, len(live))
	for id := range live {
		if !ours[id] { // counted already; a draft mid-commit comes through inbox
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var st loadCounts
	st.stale = len(stale)
	for _, id := range ids {
		env, err := q.checkEnvelope(id, live[id])
		if err != nil {
			env = q.damaged(id, err, &st)
		}
		if env != nil {
			s.schedule(env, time.Now())
		}
	}
	for _, id := range orphans {
		if env := q.orphan(id, &st); env != nil {
			s.schedule(env, time.Now())
		}
	}
	for _, env := range inbox {
		s.add(env, time.Now())
	}
	q.log.Info("spool loaded", zap.Int("count", len(s.entries)), zap.Int("stale_files", st.stale),
		zap.Int("recovered", st.recovered), zap.Int("corrupt", st.corrupt))
	return nil
}

// schedule takes a message found in the spool at start: it is counted, and
// due at once (a restart usually follows a fix); the attempt count is kept,
// so the retry schedule resumes where it was.
func (s *scheduler) schedule(env *envelope, now time.Time) {
	s.q.count.Add(1)
	env.Next = time.Time{}
	s.add(env, now)
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
	if len(env.Rcpts) == 0 {
		// Only a bounce is left to queue (it failed before).
		out.env = q.settle(ctx, h, &env, q.message(&env, env.Attempts), nil)
		return
	}
	m := q.message(&env, env.Attempts+1)
	q.log.Debug("delivery attempt", zap.String("msg_id", env.ID), zap.Int("attempt", m.Attempt),
		zap.Strings("rcpt", env.Rcpts), zap.Bool("final", m.Final))
	res := q.deliver(ctx, h, m, env.Rcpts)
	out.env = q.settle(ctx, h, &env, m, res)
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

// settle applies the results of attempt m to env and persists them:
// delivered recipients leave the envelope; failed ones (permanently, or on
// the final attempt) are bounced by the queue (bounce.go), and kept in the
// envelope until their bounce is durable; the others wait for the next
// attempt. The message is removed when nothing is left. It returns nil when
// the message is gone.
func (q *Queue) settle(ctx context.Context, h Handler, env *envelope, m *Message, res []Result) *envelope {
	got := make(map[string]Result, len(res))
	for _, r := range res {
		if _, dup := got[r.Rcpt]; !dup {
			got[r.Rcpt] = r
		}
	}
	log := q.log.With(zap.String("msg_id", env.ID))
	// A stop that cut the final attempt short proves nothing of the
	// recipients it left failed: they are not bounced, and that attempt is
	// made again at the next start.
	cut := m.Final && ctx.Err() != nil
	var left []string
	errs := make(map[string]string)
	for _, rcpt := range env.Rcpts {
		r, ok := got[rcpt]
		if !ok {
			r = Result{Rcpt: rcpt, Err: errNoResult}
		}
		switch {
		case r.Err == nil:
		case r.Permanent || m.Final && !cut:
			f := r.Failure
			f.Rcpt = rcpt
			if f.Text == "" {
				f.Text = r.Err.Error()
			}
			log.Info("recipient failed permanently", zap.String("rcpt", rcpt), zap.Int("smtp_code", f.Code),
				zap.String("enhanced", f.Enhanced), zap.String("error", f.Text), zap.Int("attempt", m.Attempt))
			env.Failed = append(env.Failed, f)
		default:
			left = append(left, rcpt)
			errs[rcpt] = r.Err.Error()
		}
	}
	env.Attempts = m.Attempt
	if cut && len(left) > 0 {
		env.Attempts = m.Attempt - 1
	}
	env.Rcpts, env.Errors = left, errs
	if err := q.bounce(ctx, h, env, log); err != nil {
		log.Error("bounce not queued, message kept until it is", zap.Error(err))
	}
	if len(left) == 0 && len(env.Failed) == 0 {
		if err := q.remove(env.ID); err != nil {
			log.Error("message not removed from the spool", zap.Error(err))
		}
		log.Info("message done", zap.Int("attempt", m.Attempt),
			zap.Int64("duration_ms", time.Since(env.Received).Milliseconds()))
		return nil
	}
	if len(left) > 0 {
		env.Next = time.Now().Add(q.wait(m.Attempt))
	} else {
		env.Next = time.Now().Add(min(q.wait(1), bounceRetry))
	}
	if err := q.persist(env); err != nil {
		// Kept in memory; after a restart the last saved state is retried.
		log.Error("envelope not saved", zap.Error(err))
	}
	if len(left) > 0 {
		log.Info("retry scheduled", zap.Int("attempt", m.Attempt), zap.Time("next_attempt", env.Next),
			zap.Strings("rcpt", left), zap.String("error", errs[left[0]]))
	} else {
		log.Info("bounce retry scheduled", zap.Time("next_attempt", env.Next))
	}
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
