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
)

// envelope is the JSON content of env/<id>.
type envelope struct {
	ID       string            `json:"id"`
	From     string            `json:"from"`             // reverse-path, "" for the null sender
	Rcpts    []string          `json:"rcpts"`            // recipients not done yet
	Received time.Time         `json:"received"`         // acceptance time
	Size     int64             `json:"size"`             // body octets
	Attempts int               `json:"attempts"`         // attempts made so far
	Next     time.Time         `json:"next_attempt"`     // when the next attempt is due
	Errors   map[string]string `json:"errors,omitempty"` // last temporary error per pending rcpt
}

func (q *Queue) tmpBody(id string) string  { return filepath.Join(q.tmpDir, id) }
func (q *Queue) tmpEnv(id string) string   { return filepath.Join(q.tmpDir, id+".env") }
func (q *Queue) bodyPath(id string) string { return filepath.Join(q.msgDir, id) }
func (q *Queue) envPath(id string) string  { return filepath.Join(q.envDir, id) }

// writeSynced creates path (which must not exist) with data and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// syncDir fsyncs a directory, making the entries created or renamed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeEnvTmp writes env to tmp/<id>.env and fsyncs it, replacing a leftover.
func (q *Queue) writeEnvTmp(env *envelope) error {
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	p := q.tmpEnv(env.ID)
	if err := writeSynced(p, data); errors.Is(err, fs.ErrExist) {
		_ = os.Remove(p)
		return writeSynced(p, data)
	} else {
		return err
	}
}

// persist atomically replaces env/<id> with env: tmp + fsync + rename + dir fsync.
func (q *Queue) persist(env *envelope) error {
	if err := q.writeEnvTmp(env); err != nil {
		return fmt.Errorf("queue: persist %s: %w", env.ID, err)
	}
	if err := os.Rename(q.tmpEnv(env.ID), q.envPath(env.ID)); err != nil {
		_ = os.Remove(q.tmpEnv(env.ID))
		return fmt.Errorf("queue: persist %s: %w", env.ID, err)
	}
	if err := syncDir(q.envDir); err != nil {
		return fmt.Errorf("queue: persist %s: %w", env.ID, err)
	}
	return nil
}

// remove deletes a message: envelope first (the message no longer exists),
// then the body.
func (q *Queue) remove(id string) error {
	err := os.Remove(q.envPath(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	if err := os.Remove(q.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	return nil
}

// errIncomplete marks an envelope whose body is missing or short: the trace
// of a Commit interrupted by a crash before it returned.
var errIncomplete = errors.New("incomplete message")

// readEnvelope loads env/<id> and checks it against its body.
func (q *Queue) readEnvelope(id string) (*envelope, error) {
	data, err := os.ReadFile(q.envPath(id))
	if err != nil {
		return nil, err
	}
	env := new(envelope)
	if err := json.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("queue: envelope %s: %w", id, err)
	}
	if env.ID != id {
		return nil, fmt.Errorf("queue: envelope %s: holds id %q", id, env.ID)
	}
	st, err := os.Stat(q.bodyPath(id))
	if err != nil {
		return nil, fmt.Errorf("queue: body %s: %w: %w", id, errIncomplete, err)
	}
	if st.Size() != env.Size {
		return nil, fmt.Errorf("queue: body %s: %w: %d octets, envelope says %d", id, errIncomplete, st.Size(), env.Size)
	}
	return env, nil
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
