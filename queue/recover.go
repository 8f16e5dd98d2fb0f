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

// Damage is contained and visible, never silent (ARCHITECTURE.md contract 7).
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
// the file's owner). It goes with the body when the message is done: local
// delivery copies the body into the Maildir (with Return-Path and
// Delivered-To), so no other name shares the inode.
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
	// Not an id: load leaves it alone should a crash leave it behind.
	p := filepath.Join(q.msgDir, "xattr-probe")
	_ = os.Remove(p) // left by a crash
	f, err := createBody(p, 0o600)
	if err == nil {
		err = f.setXattr(envXattr, []byte("{}"))
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

// markCommitted turns a draft's body into a committed one: mode 0440 and,
// best effort, the envelope copy. Called before the body's fsync, which
// makes both durable. A copy the file system will not take (too large for
// one extended attribute, about 4 KiB on ext4: an envelope of a hundred long
// recipients) is left out and said in a line: that message alone is set
// aside rather than recovered should its journal record be damaged.
//
// The copy goes first and the mode second: a crash between the two leaves a
// draft (mode 0400, removed at load; no 250 was sent), never a body marked
// committed without its copy, which load would have to set aside.
func (q *Queue) markCommitted(f *bodyFile, id string, env []byte) error {
	if q.xattr.Load() {
		if err := f.setXattr(envXattr, env); err != nil {
			q.log.Info("envelope copy not kept on the body", zap.String("msg_id", id),
				zap.Int("bytes", len(env)), zap.Error(err))
		}
	}
	return f.Chmod(modeCommitted)
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
	if err := q.j.linkTo(aside); err != nil {
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

// loadCounts is what load found, for its log line.
type loadCounts struct{ stale, recovered, corrupt int }

// damaged handles a live envelope that does not fit its body at load. A
// missing body leaves nothing to deliver: the record is dropped. Otherwise
// the body is secured first (recovered from its copy, or set aside: a body
// of the wrong size always is), and only then is the record dropped, so a
// crash in between never leaves a done record for a body that got a 250.
// It returns the envelope to schedule, if any.
func (q *Queue) damaged(id string, err error, st *loadCounts) *envelope {
	log := q.log.With(zap.String("msg_id", id))
	if errors.Is(err, errNoBody) {
		log.Warn("envelope without a body dropped", zap.Error(err))
		if err := q.remove(id); err != nil {
			log.Error("envelope without a body not dropped", zap.Error(err))
		}
		return nil
	}
	log.Error("envelope unusable", zap.Error(err))
	var env *envelope
	if errors.Is(err, errBadBody) {
		err = q.setAside(id, "body size differs from its envelope")
	} else {
		env, err = q.salvage(id)
	}
	switch {
	case err != nil:
		log.Error("spool file left in place with its unusable envelope", zap.Error(err))
		return nil
	case env != nil:
		st.recovered++ // the new add record replaced the unusable one
		return env
	}
	st.corrupt++
	if _, err := q.j.append(rec{kind: recDone, id: id}); err != nil {
		log.Error("unusable envelope not dropped", zap.Error(err))
	}
	return nil
}

// orphan decides the fate of a body in msg/ that has no live envelope and is
// no draft of this process: removed when a done record removed it or it is a
// draft a crash interrupted (mode 0400); else recovered or set aside. It
// returns the envelope to schedule, if any.
func (q *Queue) orphan(id string, st *loadCounts) *envelope {
	p := q.bodyPath(id)
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode().IsRegular() && (q.doneIDs[id] || fi.Mode().Perm() == modeDraft) {
		if q.doneIDs[id] {
			q.dropCopy(id) // it may be linked into a Maildir (trace.go)
		}
		err = os.Remove(p)
		if err == nil {
			st.stale++
			return nil
		}
	}
	var env *envelope
	if err == nil {
		env, err = q.salvage(id)
	}
	switch {
	case err != nil:
		q.log.Error("spool file without envelope left in place", zap.String("msg_id", id), zap.Error(err))
	case env != nil:
		st.recovered++
	default:
		st.corrupt++
	}
	return env
}

// salvage secures a committed body whose envelope is lost or unusable: its
// envelope is rebuilt from the copy on the body and appended as a new add
// record, synced (the message is delivered again, at least once), or, with
// no usable copy, the body is moved to corrupt/. It returns the rebuilt
// envelope, or nil when the body was set aside.
func (q *Queue) salvage(id string) (*envelope, error) {
	p := q.bodyPath(id)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, q.setAside(id, "not a regular file")
	}
	data, err := getXattr(p, envXattr)
	if err != nil {
		return nil, q.setAside(id, "envelope lost and no copy on the body: "+err.Error())
	}
	env := new(envelope)
	if err := json.Unmarshal(data, env); err != nil || env.ID != id || len(env.Rcpts) == 0 || env.Size != fi.Size() {
		return nil, q.setAside(id, "envelope lost and its copy on the body does not match")
	}
	env.Attempts, env.Next, env.Errors, env.Failed = 0, time.Time{}, nil, nil
	if data, err = json.Marshal(env); err != nil {
		return nil, err
	}
	if err := q.j.appendSync(rec{kind: recAdd, id: id, env: data}); err != nil {
		return nil, fmt.Errorf("queue: recover %s: %w", id, err)
	}
	q.log.Warn("message recovered from its spool file", zap.String("msg_id", id),
		zap.String("mail_from", env.From), zap.Strings("rcpt", env.Rcpts))
	return env, nil
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
