package queue

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// spoolPicture is what load finds in the spool, taken consistently with the
// drafts and commits of this Queue.
type spoolPicture struct {
	inbox   []*envelope       // committed since Open, not taken by Run yet
	ours    map[string]bool   // ids of this Queue's drafts and inbox: counted already
	live    map[string][]byte // live envelopes of the journal
	orphans []string          // bodies in msg/ with no live envelope, not ours
}

// load deletes what no Commit finished, recovers or sets aside the bodies
// whose envelope is lost (recover.go), and schedules every message in the
// spool, plus the ones committed since Open.
func (s *scheduler) load() error {
	q := s.q
	pic, err := q.picture()
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(pic.live))
	for id := range pic.live {
		if !pic.ours[id] { // a draft mid-commit comes through inbox
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var st loadCounts
	for _, id := range ids {
		env, err := q.checkEnvelope(id, pic.live[id])
		if err != nil {
			env = q.damaged(id, err, &st)
		}
		if env != nil {
			s.schedule(env, time.Now())
		}
	}
	for _, id := range pic.orphans {
		if env := q.orphan(id, &st); env != nil {
			s.schedule(env, time.Now())
		}
	}
	for _, env := range pic.inbox {
		s.add(env, time.Now())
	}
	q.log.Info("spool loaded", zap.Int("count", len(s.entries)), zap.Int("stale_files", st.stale),
		zap.Int("recovered", st.recovered), zap.Int("corrupt", st.corrupt))
	return nil
}

// picture lists msg/ and the journal's live envelopes and takes the inbox.
// Under mu, drafts and inbox are a consistent picture of this Queue's own
// messages: an id leaves drafts and enters inbox in one critical section,
// and its add record is appended while it is still a draft.
func (q *Queue) picture() (*spoolPicture, error) {
	msgNames, err := listDir(q.msgDir)
	if err != nil {
		return nil, fmt.Errorf("queue: load: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	pic := &spoolPicture{inbox: q.inbox, live: q.j.snapshot()}
	q.inbox = nil
	pic.ours = make(map[string]bool, len(q.drafts)+len(pic.inbox))
	for id := range q.drafts {
		pic.ours[id] = true
	}
	for _, env := range pic.inbox {
		pic.ours[env.ID] = true
	}
	for _, n := range msgNames {
		if _, ok := pic.live[n]; validID(n) && !ok && !pic.ours[n] {
			pic.orphans = append(pic.orphans, n)
		}
	}
	return pic, nil
}

// schedule takes a message found in the spool at start: it is counted, and
// due at its next attempt as saved (now if overdue), so that a restart does
// not make every deferred message due at once (Retry with all does that on
// purpose); a held message stays held. The attempt count is kept, so the
// retry schedule resumes where it was.
func (s *scheduler) schedule(env *envelope, now time.Time) {
	s.q.count.Add(1)
	s.add(env, now)
}
