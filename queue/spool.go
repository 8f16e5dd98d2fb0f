package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// envelope is the JSON body of a journal add or update record.
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
	// Last is the last temporary failure of each pending rcpt, with its
	// reply, for the delay notice and the bounce when the lifetime ends.
	Last map[string]Failure `json:"last,omitempty"`
	// DelayWarned is set once the delay notice is queued (or would go to
	// the null sender): it is sent at most once per message.
	DelayWarned bool  `json:"delay_warned,omitempty"`
	Held        bool  `json:"held,omitempty"`    // never attempted until released (control.go)
	History     []Try `json:"history,omitempty"` // the last maxHistory attempts, oldest first
	// Params is the sender's DSN parameters (RFC 3461); absent in records
	// written before DSN was offered, which load with the defaults.
	Params
	// Succeeded holds delivered rcpts whose success notice (NOTIFY=SUCCESS)
	// is not queued yet, Failure.Action saying "delivered" or "relayed".
	Succeeded []Failure `json:"succeeded,omitempty"`
	// Trace is set when the body starts with local delivery's trace fields
	// (trace.go); absent in records written before it existed, and for
	// every message with more than one recipient or a remote one.
	Trace *Trace `json:"trace,omitempty"`
}

func (q *Queue) bodyPath(id string) string { return filepath.Join(q.msgDir, id) }

// persist appends env as an update record and waits until it is durable
// (group sync: attempts finishing together share one fdatasync, and with
// the commits in flight).
func (q *Queue) persist(env *envelope) error {
	data, err := json.Marshal(env)
	if err == nil {
		err = q.j.appendSync(rec{kind: recUpdate, id: env.ID, env: data})
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
	if err := os.Remove(q.bodyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	if jerr != nil {
		return fmt.Errorf("queue: remove %s: %w", id, jerr)
	}
	return nil
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

// listDir returns the names in dir.
func listDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
