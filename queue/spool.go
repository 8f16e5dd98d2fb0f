package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// envelope is the JSON body of a journal add or update record (and the
// content of an old-layout env/<id> file).
type envelope struct {
	ID       string            `json:"id"`
	From     string            `json:"from"`             // reverse-path, "" for the null sender
	Rcpts    []string          `json:"rcpts"`            // recipients not done yet
	Received time.Time         `json:"received"`         // acceptance time
	Size     int64             `json:"size"`             // body octets
	Attempts int               `json:"attempts"`         // attempts made so far
	Next     time.Time         `json:"next_attempt"`     // when the next attempt is due
	Errors   map[string]string `json:"errors,omitempty"` // last temporary error per pending rcpt
	Failed   []Failure         `json:"failed,omitempty"` // failed rcpts whose bounce is not queued yet
}

func (q *Queue) tmpBody(id string) string  { return filepath.Join(q.tmpDir, id) }
func (q *Queue) bodyPath(id string) string { return filepath.Join(q.msgDir, id) }

// syncDir fsyncs a directory, making the entries created or renamed in it durable.
func syncDir(dir string) error {
	d, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// persist appends env as an update record and waits until it is durable
// (group sync: attempts finishing together share one fdatasync, and with
// the commits in flight).
func (q *Queue) persist(env *envelope) error {
	data, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("queue: persist %s: %w", env.ID, err)
	}
	off, err := q.j.append(rec{kind: recUpdate, id: env.ID, env: data})
	if err == nil {
		err = q.j.syncTo(off)
	}
	if err != nil {
		return fmt.Errorf("queue: persist %s: %w", env.ID, err)
	}
	return nil
}

// remove deletes a message: a done record first (the message no longer
// exists), then the body. The done record is not synced: a crash may bring
// the message back (at-least-once delivery, contract 1) if its body is still
// there; a message whose body is gone is dropped at load.
func (q *Queue) remove(id string) error {
	_, jerr := q.j.append(rec{kind: recDone, id: id})
	q.dropCopy(id)
	if err := os.Remove(q.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	if jerr != nil {
		return fmt.Errorf("queue: remove %s: %w", id, jerr)
	}
	return nil
}

// readEnvelope returns the live envelope of id, checked against its body.
func (q *Queue) readEnvelope(id string) (*envelope, error) {
	data, ok := q.j.get(id)
	if !ok {
		return nil, fmt.Errorf("queue: envelope %s: %w", id, fs.ErrNotExist)
	}
	return q.checkEnvelope(id, data)
}

// checkEnvelope decodes an envelope and checks it against its body: the
// error wraps errNoBody or errBadBody when the body does not match.
func (q *Queue) checkEnvelope(id string, data []byte) (*envelope, error) {
	env := new(envelope)
	if err := json.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("queue: envelope %s: %w", id, err)
	}
	if env.ID != id {
		return nil, fmt.Errorf("queue: envelope %s: holds id %q", id, env.ID)
	}
	st, err := os.Stat(q.bodyPath(id))
	if isNotExist(err) {
		return nil, fmt.Errorf("queue: body %s: %w", id, errNoBody)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: body %s: %w", id, err)
	}
	if st.Size() != env.Size {
		return nil, fmt.Errorf("queue: body %s: %w: %d octets, envelope says %d", id, errBadBody, st.Size(), env.Size)
	}
	return env, nil
}

// migrate converts an old-layout spool: every envelope file in env/ whose
// message is not in the journal yet becomes an add record (one write, one
// sync), then the files and env/ itself are removed. An unreadable envelope
// stays where it is (and env/ with it), reported; the next Open tries again.
func (q *Queue) migrate(dir string) error {
	envDir := filepath.Join(dir, "env")
	names, err := listDir(envDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var recs []rec
	var done []string
	for _, n := range names {
		if !validID(n) {
			continue
		}
		p := filepath.Join(envDir, n)
		if _, ok := q.j.get(n); ok {
			done = append(done, p) // migrated before a crash
			continue
		}
		data, err := os.ReadFile(p)
		if err == nil {
			var env envelope
			if err = json.Unmarshal(data, &env); err == nil && env.ID != n {
				err = fmt.Errorf("holds id %q", env.ID)
			}
		}
		if err != nil {
			q.log.Error("old envelope unreadable, left in env/", zap.String("msg_id", n), zap.Error(err))
			continue
		}
		recs = append(recs, rec{kind: recAdd, id: n, env: data})
		done = append(done, p)
	}
	if len(recs) > 0 {
		off, err := q.j.append(recs...)
		if err == nil {
			err = q.j.syncTo(off)
		}
		if err != nil {
			return err
		}
	}
	for _, p := range done {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if err := os.Remove(envDir); err != nil {
		q.log.Warn("old env/ not removed", zap.Error(err))
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	q.log.Info("old spool converted to the journal", zap.Int("count", len(recs)))
	return nil
}

// listDir returns the names in dir.
func listDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// idOf returns the id a spool file name belongs to ("<id>" or "<id>.env").
func idOf(name string) string {
	id, _, _ := strings.Cut(name, ".")
	return id
}
