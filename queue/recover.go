package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Damage is contained and visible, never silent (DESIGN.md contract 7).
//
// A body in msg/ is a draft until its Commit: drafts are created mode 0400
// and Commit makes them 0440, before the body's fsync, and writes a copy of
// the envelope onto the body file itself (the extended attribute
// envXattr, where the file system keeps them). So at load a body without a
// live envelope is one of:
//
//   - removed by a done record the journal still holds: it goes;
//   - mode 0400, a draft a crash interrupted (no 250 was sent): it goes;
//   - committed, its envelope lost with a damaged journal record: the
//     envelope is rebuilt from the copy on the body (the journal is an
//     index that can be rebuilt) and the message delivered (at least once:
//     recipients already done may get it again);
//   - committed with no readable copy: moved to corrupt/, with an error line
//     naming it, counted (Corrupt), never deleted.
//
// A body shorter or longer than its envelope says is moved to corrupt/ too.

// envXattr is the extended attribute holding the envelope copy. It is in the
// user namespace (any file system that has extended attributes allows it to
// the file's owner). Bodies hard-linked into a Maildir share the inode and
// so carry it too; only the daemon's user can read it.
const envXattr = "user.gomta.envelope"

// Modes of a body: a draft is readable by its owner only; Commit adds group
// read, which marks it as committed.
const (
	modeDraft     os.FileMode = 0o400
	modeCommitted os.FileMode = 0o440
)

// Corrupt reports how many files the spool's corrupt/ directory holds (set
// aside for the operator: bodies without a readable envelope, damaged
// journals). It is counted at Open and as files are moved there.
func (q *Queue) Corrupt() int { return int(q.corrupt.Load()) }

// CorruptDir is where damaged spool files are set aside.
func (q *Queue) CorruptDir() string { return q.corruptDir }

// probeXattr finds out whether the spool's file system keeps extended
// attributes, and counts what corrupt/ already holds.
func (q *Queue) probeXattr() {
	p := filepath.Join(q.tmpDir, "xattr-probe")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = setXattr(f, envXattr, []byte("{}"))
		f.Close()
		_ = os.Remove(p)
	}
	q.xattr.Store(err == nil)
	if err != nil {
		q.log.Warn("spool file system keeps no envelope copy on bodies: a damaged journal record will move its message to corrupt/",
			zap.Error(err))
	}
	names, err := listDir(q.corruptDir)
	if err == nil && len(names) > 0 {
		q.corrupt.Store(int64(len(names)))
		q.log.Error("spool corrupt/ holds files set aside for the operator",
			zap.Int("count", len(names)), zap.String("path", q.corruptDir))
	}
}

// markCommitted turns a draft's body into a committed one: mode 0440 and the
// envelope copy. Called before the body's fsync, which makes both durable.
func (q *Queue) markCommitted(f *os.File, env []byte) error {
	if err := f.Chmod(modeCommitted); err != nil {
		return err
	}
	if q.xattr.Load() {
		if err := setXattr(f, envXattr, env); err != nil {
			return err
		}
	}
	return nil
}

// setJournalAside keeps a damaged journal in corrupt/ for the operator and
// rewrites the journal from what replay read, so that the next start does
// not meet the damage again. Called by Open before anything is appended.
func (q *Queue) setJournalAside(damaged []span) error {
	var n int64
	for _, s := range damaged {
		n += s.n
		q.log.Error("journal damaged record skipped", zap.Int64("offset", s.off), zap.Int64("bytes", s.n))
	}
	aside := filepath.Join(q.corruptDir, "journal-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Link(q.j.path, aside); err != nil {
		return err
	}
	if err := syncDir(q.corruptDir); err != nil {
		return err
	}
	if _, _, err := q.j.compact(); err != nil {
		return err
	}
	q.corrupt.Add(1)
	q.log.Error("damaged journal set aside and rewritten", zap.String("path", aside),
		zap.Int("regions", len(damaged)), zap.Int64("bytes", n))
	return nil
}

// orphan decides the fate of a body in msg/ that has no live envelope and is
// no draft of this process. It reports what it did: "removed", "recovered"
// or "corrupt".
func (q *Queue) orphan(id string) (string, error) {
	p := q.bodyPath(id)
	if q.doneIDs[id] {
		return "removed", os.Remove(p)
	}
	st, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "corrupt", q.setAside(id, "not a regular file")
	}
	if st.Mode().Perm() == modeDraft {
		return "removed", os.Remove(p)
	}
	data, err := getXattr(p, envXattr)
	if err != nil {
		return "corrupt", q.setAside(id, "envelope lost and no copy on the body: "+err.Error())
	}
	env := new(envelope)
	if err := json.Unmarshal(data, env); err != nil || env.ID != id || len(env.Rcpts) == 0 || env.Size != st.Size() {
		return "corrupt", q.setAside(id, "envelope lost and its copy on the body does not match")
	}
	env.Attempts, env.Next, env.Errors, env.Failed = 0, time.Time{}, nil, nil
	data, err = json.Marshal(env)
	if err != nil {
		return "", err
	}
	off, err := q.j.append(rec{kind: recAdd, id: id, env: data})
	if err == nil {
		err = q.j.syncTo(off)
	}
	if err != nil {
		return "", fmt.Errorf("queue: recover %s: %w", id, err)
	}
	q.log.Warn("message recovered from its spool file", zap.String("msg_id", id),
		zap.String("mail_from", env.From), zap.Strings("rcpt", env.Rcpts))
	return "recovered", nil
}

// setAside moves a body to corrupt/ and says so: it is never deleted.
func (q *Queue) setAside(id, why string) error {
	to := filepath.Join(q.corruptDir, id)
	if err := os.Rename(q.bodyPath(id), to); err != nil {
		return fmt.Errorf("queue: set %s aside: %w", id, err)
	}
	if err := syncDir(q.corruptDir); err != nil {
		return fmt.Errorf("queue: set %s aside: %w", id, err)
	}
	if err := syncDir(q.msgDir); err != nil {
		return fmt.Errorf("queue: set %s aside: %w", id, err)
	}
	q.corrupt.Add(1)
	q.log.Error("spool file moved to corrupt/", zap.String("msg_id", id), zap.String("path", to),
		zap.String("error", why))
	return nil
}

// errNoBody marks a live envelope whose body is gone (a crash between a
// done record and the body's unlink, or a body removed by hand): there is
// nothing to deliver; the envelope is dropped.
var errNoBody = errors.New("body missing")

// errBadBody marks a live envelope whose body has another size than it says:
// the body is damaged and set aside.
var errBadBody = errors.New("body size differs from its envelope")

// isNotExist is errors.Is(err, fs.ErrNotExist).
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
