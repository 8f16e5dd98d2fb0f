// Package queue owns the durable spool of one mail host and its scheduling loop:
// messages are written to disk as they stream in, committed (fsync'd, directory
// fsync'd, journalled; group commit across sessions) before the SMTP 250, handed to
// delivery over a channel, retried with backoff on temporary failure, kept across
// restarts, bounced by the queue itself when they fail for good, and removed
// when every recipient is done: delivered, or bounced with the bounce durable
// (DESIGN.md contracts 1, 2, 3 and 7). Damage is contained: a damaged journal
// record costs at most that record, and a body whose envelope is lost is
// recovered from the envelope copy on the body file or moved to corrupt/,
// never deleted (recover.go). One goroutine (Run) owns the schedule;
// everything else talks to it by channel.
//
// On-disk layout under Options.Dir (one Queue per directory):
//
//	msg/<id>          body: written once through one descriptor while a draft
//	                  (mode 0400), made 0440 with a copy of its envelope in the
//	                  extended attribute user.gomta.envelope at Commit, before
//	                  its fsync; never modified once committed, may be
//	                  hard-linked by the mailbox store (msg/ must stay on Dir's
//	                  filesystem)
//	corrupt/          bodies whose envelope is lost with no readable copy,
//	                  bodies of the wrong size, damaged journals: set aside
//	                  for the operator, reported at every start (Corrupt)
//	tmp/              where drafts were written before 2026-11-26; emptied at load
//	journal           append-only envelope journal (see journal.go): add
//	                  (whole envelope), update (after an attempt) and done
//	                  records, each length-prefixed and CRC-32C checked
//	journal.tmp       a compaction in progress
//
// A message exists iff its add record is durable and not followed by a
// done record. Envelopes live in one file rather than one file each
// because on ext4 every freed inode slows down every later file creation.
//
// Commit: the body is written and fsync'd by the session; then one
// committer fsyncs msg/ once for the whole batch (the bodies' names),
// appends one add record per message with one write(2), fdatasyncs the
// journal once, and only then do the batch's Commits return. After an
// attempt, an update record (done recipients removed, attempt count, next
// attempt) is appended and synced before the outcome reaches Run; syncs of
// attempts and commits in flight together are shared (journal.syncTo). A
// message is removed by a done record, not synced, and then by unlinking
// its body: a crash may bring the message back (at-least-once delivery,
// contract 1).
//
// The journal is appended to by any goroutine under one mutex used for
// appends and the in-memory map of live envelopes; Run starts a compaction
// goroutine (at most one) when the journal is over 4 MiB and more than half
// dead: it rewrites the live envelopes to journal.tmp while appends go on,
// then briefly holds the mutex to add what was appended meanwhile, sync,
// rename over the journal and fsync Dir.
//
// Committed messages reach Run through an inbox appended to under a mutex and
// signalled on a buffered-1 kick channel, so Commit never waits for Run (nor
// needs it to be running: Run loads the spool when it starts). The schedule
// itself (message id → state, a heap of due times, one timer) is touched only
// by Run's goroutine. Attempts run in at most Workers goroutines; each one
// persists its outcome before handing it back to Run, so a restart keeps the
// schedule.
//
// Ids are 20 characters of lower-case base32hex: 48 bits of Unix milliseconds,
// a 16-bit counter and 32 random bits; they sort roughly by acceptance time.
//
// Open replays the journal, skipping damaged records and cutting off a torn
// tail (a write a crash interrupted) before anything is appended; a journal
// with damage is kept in corrupt/ and rewritten. An old-layout spool
// (env/<id> envelope files) is converted into the journal and env/ removed.
// At Run start, files in tmp/ that belong to no draft of this Queue, drafts
// (mode 0400) and bodies a done record removed are deleted; other bodies
// without a live envelope are recovered or set aside (recover.go); an
// envelope whose body is gone is dropped; everything else is due at once,
// its attempt count kept.
//
// Bounces: a recipient that fails for good (or on the final attempt) moves
// to the envelope's failed list; the queue asks the Handler for the bounce
// text and commits it as a new message from <> with room of its own beyond
// MaxMessages; only then does the recipient leave the envelope. A bounce
// that cannot be queued (disk full) keeps the message, across restarts,
// retried every minute at most.
package queue

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Message is one spooled message handed to a Handler for one delivery attempt.
type Message struct {
	ID       string    // msg_id, assigned at acceptance
	From     string    // reverse-path, "" for the null sender
	Rcpts    []string  // recipients still to be done (not yet delivered or bounced)
	Received time.Time // time of acceptance
	Attempt  int       // 1 for the first attempt
	Final    bool      // the last attempt allowed: temporary failures must be treated as permanent
	BodyPath string    // spool file holding the body (Received header included); read-only
	Size     int64     // body size in octets
}

// Open opens the body for reading.
func (m *Message) Open() (io.ReadCloser, error) { return os.Open(m.BodyPath) }

// Result is the outcome for one recipient of a delivery attempt.
type Result struct {
	Rcpt string
	// Err is nil when the recipient is delivered (done). Otherwise the
	// recipient failed: for good when Permanent is set or the attempt was
	// Final, and then the queue bounces it with Failure; else it is retried.
	Err       error
	Permanent bool
	Failure   Failure // what a bounce reports of a failed recipient
}

// Failure is what a bounce (RFC 3464 DSN) reports of one failed recipient.
// It is kept in the envelope until the bounce is durable.
type Failure struct {
	Rcpt     string `json:"rcpt"`
	Code     int    `json:"code,omitempty"`     // remote SMTP reply code, 0 when none
	Enhanced string `json:"enhanced,omitempty"` // RFC 3463 status
	Text     string `json:"text"`               // reply text or local error
	Remote   string `json:"remote,omitempty"`   // mail exchanger that answered
}

// Handler delivers messages and writes their bounces; package delivery
// implements it. The queue owns bounces: it asks WriteBounce for the text,
// queues it itself (with room kept for bounces beyond MaxMessages), and
// keeps the original until the bounce is durable (DESIGN.md contract 7).
type Handler interface {
	// Deliver makes one attempt for every recipient of m and returns one Result
	// per recipient. It is called from several worker goroutines at once.
	Deliver(ctx context.Context, m *Message) []Result
	// WriteBounce writes the whole bounce message (header and body) to
	// m.From about the failed recipients of m. m.From is never empty.
	WriteBounce(w io.Writer, m *Message, failed []Failure) error
}

// ErrFull is returned by NewMessage/Commit when the queue holds as many messages
// as allowed (SMTP answers 452 4.3.1).
var ErrFull = errors.New("queue: full")
