// Package queue owns the durable spool of one mail host and its scheduling
// loop. Messages are written to disk as they stream in, committed (fsync'd,
// directory fsync'd, journalled; group commit across sessions) before the
// SMTP 250, delivered by the Handler in attempts that Run starts on worker
// goroutines, retried with backoff on temporary failure, kept across
// restarts, bounced by the queue itself when they fail for good, and removed
// when every recipient is done: delivered, or bounced with the bounce durable
// (ARCHITECTURE.md contracts 1, 2, 3 and 7).
//
// # Ownership
//
// Run is the actor that owns the schedule (message id → state, a heap of
// due times, one timer); only its goroutine touches it. Committed messages
// reach it through an inbox appended to under a mutex and signalled on a
// buffered-1 kick channel, so Commit never waits for Run (nor needs it to be
// running: Run loads the spool when it starts). When a message is due, Run
// hands a copy of its envelope to a new attempt goroutine (at most Workers
// at once), which calls Handler.Deliver, persists the outcome, and only then
// sends it back to Run on a results channel; Run takes it into the schedule.
// So a restart keeps the schedule, and no state is shared but by messages.
//
// # On-disk layout
//
// Under Options.Dir (one Queue per directory):
//
//	msg/<id>          body: written once through one descriptor while a draft
//	                  (mode 0400), made 0440 with a copy of its envelope in the
//	                  extended attribute user.gomta.envelope at Commit, before
//	                  its fsync; never modified once committed (local
//	                  delivery copies it into the Maildir, or hard-links it
//	                  when it starts with the trace fields of its only
//	                  recipient, trace.go: msg/ and the Maildirs on one
//	                  file system spare an inode and a file fsync)
//	journal           append-only envelope journal (journal.go): add (whole
//	                  envelope), update (after an attempt) and done records,
//	                  each length-prefixed and CRC-32C checked
//	journal.tmp       a compaction in progress
//	corrupt/          bodies whose envelope is lost with no readable copy,
//	                  bodies of the wrong size, damaged journals: set aside
//	                  for the operator, reported at every start (Corrupt)
//
// A message exists iff its add record is durable and not followed by a done
// record. Envelopes live in one file rather than one file each because on
// ext4 every freed inode slows down every later file creation.
//
// # Durability
//
// Commit: the body is written and fsync'd by the session; then the group
// committer (commit.go) fsyncs msg/ once for the whole batch (the bodies'
// names), appends one add record per message with one write(2), fdatasyncs
// the journal once, and only then do the batch's Commits return. After an
// attempt, an update record (done recipients removed, attempt count, next
// attempt) is appended and synced before the outcome reaches Run; syncs of
// attempts and commits in flight together share one fdatasync. A message is
// removed by a done record, not synced, and then by unlinking its body: a
// crash may bring the message back (at-least-once delivery, contract 1).
//
// The journal (journal.go, journal_compact.go) is reached through a small
// API: openJournal replays it, append and syncTo write and make durable,
// compact rewrites it. Run starts a compaction goroutine (at most one) when
// the journal is over 4 MiB and more than half dead; appends and syncs go on
// meanwhile.
//
// # Start and damage
//
// Open replays the journal, skipping damaged records and cutting off a torn
// tail (a write a crash interrupted) before anything is appended; a journal
// with damage is kept in corrupt/ and rewritten. When Run starts (load.go),
// drafts a crash interrupted (mode 0400) and bodies a done record removed
// are deleted; other bodies without a live envelope are recovered from
// their envelope copy or set aside (recover.go); an envelope whose body is
// gone is dropped; everything else is due at its saved next attempt (now if
// overdue), its attempt count kept, and a held message stays held.
//
// # Control
//
// List, Show, Stats, Retry, Hold, Release and Drop (control.go) are requests
// that Run answers on its own goroutine, between two steps of its loop, like
// a result or a kick: the schedule keeps one writer and no lock. Each
// answers for a message whether it is idle or in an attempt; an action on a
// message in an attempt is noted and applied to the envelope the attempt
// brings back. Hold is a flag in the envelope (persisted, so it survives a
// restart): a held message is never attempted until released, and release
// makes it due at once. Drop removes a message; with a bounce, the DSN is
// queued through the queue's own bounce path first, and the message is kept
// when it cannot be. Every envelope keeps the results of its last attempts
// (time, per-recipient code, enhanced code and reply) for Show.
//
// # Bounces
//
// A recipient that fails for good (or on the final attempt) moves to the
// envelope's failed list; the queue asks the Handler for the bounce text and
// commits it as a new message from <> with room of its own beyond
// MaxMessages; only then does the recipient leave the envelope (bounce.go).
// A bounce that cannot be queued (disk full) keeps the message, across
// restarts, retried every minute at most.
//
// The retry schedule (schedule.go) is an explicit list of waits or an
// exponential backoff with a cap, and MaxLifetime ends either: the attempt
// at Received+MaxLifetime is final, and recipients still failing then
// bounce with 5.4.7 and their last reply. Past DelayWarning, the sender of
// a message with recipients still pending gets one delay notice (Action:
// delayed) through the same path as bounces; the envelope's DelayWarned
// keeps it from going twice, across restarts too.
//
// # DSN parameters
//
// The sender's RFC 3461 parameters (RET, ENVID, and per recipient as
// queued NOTIFY and ORCPT: Params, Draft.SetParams) are stored with the
// envelope, in the journal and in the copy on the body, and given to the
// Handler with each Message; a record written before they existed loads
// with none. A recipient without NOTIFY is told of failures and delays
// (DefaultNotify). A recipient whose NOTIFY lacks FAILURE (or DELAY) gets
// no bounce (or delay notice): it is logged ("bounce suppressed by
// NOTIFY") and still leaves the envelope. A delivered recipient with
// NOTIFY=SUCCESS whose Result carries a Notice gets a success notice,
// queued like a bounce: it stays in the envelope (Succeeded) until the
// notice is durable, and none goes to the null sender.
//
// Ids are 20 characters of lower-case base32hex: 48 bits of Unix
// milliseconds, a 16-bit counter and 32 random bits; they sort roughly by
// acceptance time.
package queue
