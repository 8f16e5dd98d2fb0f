package mailbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gomta/session/address"
)

// Add gives the users that have no mailbox yet one each (an account added
// by a reload): their Maildirs are created as New creates them, and their
// actors start at once when Run runs. A user that has a mailbox already is
// skipped; every bad name is reported and none of the batch is added. A
// mailbox is never removed: mail already delivered to an account that goes
// stays on disk, and the host stops accepting mail for it.
func (s *Store) Add(users []string) error {
	var errs []error
	fresh := map[string]*actor{}
	s.mu.RLock()
	for _, u := range users {
		key := address.Account(u)
		if _, ok := s.actors[key]; ok || fresh[key] != nil {
			continue
		}
		if err := validUser(key); err != nil {
			errs = append(errs, fmt.Errorf("mailbox: user %q: %w", u, err))
			continue
		}
		fresh[key] = newActor(s, key, filepath.Join(s.root, key))
	}
	s.mu.RUnlock()
	if err := errors.Join(errs...); err != nil || len(fresh) == 0 {
		return err
	}
	now := time.Now()
	for _, a := range fresh {
		if err := prepare(a.dir, now); err != nil {
			return err
		}
	}
	if err := syncDir(s.root); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, a := range fresh {
		if _, ok := s.actors[key]; ok {
			continue // added by a concurrent Add
		}
		s.actors[key] = a
		if s.runCtx != nil && !s.stopped {
			s.start(a)
		}
	}
	return nil
}

// prepare creates a mailbox's Maildir (0700) if missing, makes it durable
// and clears stale files out of its tmp/.
func prepare(dir string, now time.Time) error {
	for _, sub := range []string{dirTmp, dirNew, dirCur} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("mailbox: create %s: %w", dir, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	cleanTmp(dir, now)
	return nil
}
