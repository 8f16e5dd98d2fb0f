package jsq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gomta/queue"
)

// Headers of a stream message.
const (
	hdrEnvelope = "Gomta-Envelope" // the original envelope, JSON
	hdrGen      = "Gomta-Gen"      // generation: Release and Retry publish the next one
)

// envelope is what a stream message says of its message: immutable, the
// same in every generation.
type envelope struct {
	ID       string       `json:"id"`
	From     string       `json:"from"`
	Rcpts    []string     `json:"rcpts"`
	Received time.Time    `json:"received"`
	Size     int64        `json:"size"`
	Params   queue.Params `json:"params"`
	Object   bool         `json:"object,omitempty"` // the body is the object <id>, not the payload
}

// state is the mutable state of one message, the value of its KV key.
type state struct {
	envelope
	Rcpts       []string                 `json:"pending"` // recipients not done yet
	Attempts    int                      `json:"attempts"`
	Next        time.Time                `json:"next_attempt"`
	Last        map[string]queue.Failure `json:"last,omitempty"`      // last temporary failure per pending rcpt
	Failed      []queue.Failure          `json:"failed,omitempty"`    // failed for good, bounce not queued yet
	Succeeded   []queue.Failure          `json:"succeeded,omitempty"` // success notice not queued yet
	DelayWarned bool                     `json:"delay_warned,omitempty"`
	Held        bool                     `json:"held,omitempty"`
	History     []queue.Try              `json:"history,omitempty"` // the last maxHistory attempts
	Node        string                   `json:"node,omitempty"`    // node holding an attempt, "" when none
	Gen         int                      `json:"gen,omitempty"`     // generation of the current stream message
	// Claim is the delivery count of the stream message whose attempt Node
	// holds: with Node, it tells an attempt taken over by a redelivery
	// (even to the same node) from the attempt that claimed the state.
	Claim uint64 `json:"claim,omitempty"`
	// Done marks a message whose every recipient is done but whose stream
	// message was perhaps not acked (the ack failed): a redelivery only
	// acks it and cleans up, never attempts it again.
	Done bool `json:"done,omitempty"`
}

// maxHistory is how many attempts a state remembers (the local queue's).
const maxHistory = 8

// newState is the state of a message never attempted.
func newState(env envelope) *state {
	return &state{envelope: env, Rcpts: append([]string(nil), env.Rcpts...), Next: env.Received}
}

// header is the header of generation gen of env's stream message.
func (env *envelope) header(gen int) (nats.Header, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	h := nats.Header{}
	h.Set(hdrEnvelope, string(b))
	h.Set(hdrGen, strconv.Itoa(gen))
	return h, nil
}

// parseHeader reads the envelope and generation of a stream message.
func parseHeader(h nats.Header) (envelope, int, error) {
	var env envelope
	if err := json.Unmarshal([]byte(h.Get(hdrEnvelope)), &env); err != nil {
		return env, 0, fmt.Errorf("jsq: damaged envelope header: %w", err)
	}
	if !queue.ValidID(env.ID) {
		return env, 0, errors.New("jsq: envelope header without a valid id")
	}
	gen, _ := strconv.Atoi(h.Get(hdrGen))
	return env, gen, nil
}

// get reads id's state and its revision; jetstream.ErrKeyNotFound when none.
func (q *Queue) get(ctx context.Context, id string) (*state, uint64, error) {
	e, err := q.kv.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	st := new(state)
	if err := json.Unmarshal(e.Value(), st); err != nil {
		return nil, 0, fmt.Errorf("jsq: damaged state of %s: %w", id, err)
	}
	return st, e.Revision(), nil
}

// put writes st over revision rev (creates it when rev is 0); it fails
// with jetstream.ErrKeyRevisionMismatch (or ErrKeyExists) when another
// writer came first.
func (q *Queue) put(ctx context.Context, st *state, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return q.kv.Create(ctx, st.ID, b)
	}
	return q.kv.Update(ctx, st.ID, b, rev)
}

// conflict reports whether err means another writer changed the key first.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// maxTries bounds the read-merge-write loops on a contended state: each
// loser of a race reads again, and a few rounds settle any real contention.
const maxTries = 8

// info is the control API's view of st.
func (st *state) info(history bool) queue.MessageInfo {
	mi := queue.MessageInfo{ID: st.ID, From: st.From, Size: st.Size, Arrival: st.Received,
		Attempts: st.Attempts, Next: st.Next, Held: st.Held, Busy: st.Node != ""}
	status := queue.RcptDeferred
	switch {
	case st.Held:
		status = queue.RcptHeld
	case st.Node != "" || st.Attempts == 0:
		status = queue.RcptActive
	}
	for _, r := range st.Rcpts {
		l := st.Last[r]
		mi.Recipients = append(mi.Recipients, queue.RcptInfo{Address: r, Status: status,
			LastCode: l.Code, LastEnhanced: l.Enhanced, LastReply: l.Text})
	}
	for _, f := range st.Failed {
		mi.Recipients = append(mi.Recipients, queue.RcptInfo{Address: f.Rcpt, Status: queue.RcptFailed,
			LastCode: f.Code, LastEnhanced: f.Enhanced, LastReply: f.Text})
	}
	if history {
		mi.History = append([]queue.Try(nil), st.History...)
	}
	return mi
}
