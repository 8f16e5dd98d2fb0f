// Package mailbox owns the local mailboxes of one mail host: one Maildir per
// account (Root/<user>/{tmp,new,cur}, https://cr.yp.to/proto/maildir.html)
// and one actor goroutine per mailbox, the only goroutine that changes that
// mailbox's state (the POP3 lock holder, moves into cur/, deletions).
// Deliver, Open, Commit and Close send the actor a typed request with a
// buffered-1 reply channel; no mutex guards mailbox state.
//
// Invariants and decisions:
//
//   - Deliver returns nil only when the message is durable (ARCHITECTURE.md contract
//     2): the message file — Return-Path and Delivered-To lines (RFC 5321
//     §4.4, as Postfix's local(8) writes them), then the committed spool
//     file copied kernel-side (copy_file_range) — is written to tmp/ under a
//     unique name and fsync'd, and the actor renames it into new/. Then new/
//     is fsync'd: deliveries that queue up at the actor at once share one
//     directory fsync (group commit). A spool file that already starts with
//     this mailbox's two lines (the queue wrote them at DATA for a message
//     whose only recipient is local: Delivery.TraceLen, TraceFields) is
//     hard-linked into new/ by the actor instead: the spool fsync'd it
//     before its 250, so the batch's directory fsync makes it durable, one
//     inode and one file fsync per message. Where the link fails (EXDEV:
//     spool and Maildir on two file systems), it is copied as it is, its
//     two lines not written twice.
//   - A message's unique name carries its queue msg_id (in the R field,
//     which the msg_id's random bits fill), so that a POP3 session can name
//     the message it serves (Info.MsgID); the delivery is logged once
//     durable, as "message delivered" with the file name.
//   - Messages are stored byte for byte as given after the two header
//     lines — the spool's CRLF line endings included — so a message's POP3
//     size (RFC 1939 LIST) is its file size, recorded in the unique name as
//     ",S=<size>" and read from there.
//     Files dropped in by other tools with LF line endings are served as they
//     are.
//   - Open takes the mailbox's POP3 lock (RFC 1939 §8 exclusive maildrop),
//     moves new/ messages into cur/ with info ":2," as Dovecot does, and
//     snapshots cur/ oldest delivery first. A message's UID is its unique name
//     (the file name without ":2,<flags>"), stable across sessions and moves;
//     a name outside RFC 1939 §7's limits (70 printable characters) is
//     replaced by a stable digest. Mail delivered during a session lands in
//     new/ and is seen by the next session.
//   - Commit unlinks the deleted messages, fsyncs cur/ and releases the lock;
//     Close releases it and deletes nothing. The ctx given to Open bounds only
//     that call: the lock is held until Commit or Close.
//   - Users are looked up under address.Account: the local part folded to
//     lower case (as nearly every MTA does) and, when it is UTF-8, put in
//     NFC; the domain in its IDNA A-label form, so that 用户@例子.中国 and
//     用户@xn--fsqu00a.xn--fiqs8s are one mailbox. The folded address is the
//     directory name, kept in UTF-8 (a Linux file name is any octets but
//     '/' and NUL; NFC makes it one spelling); it must be one safe path
//     element (validUser: no '/', '\', control character or leading '.').
package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"gomta/session/address"
	"gomta/session/logvocab"
)

// Errors returned by the Store.
var (
	ErrNoUser = errors.New("mailbox: no such user")          // user has no mailbox here
	ErrInUse  = errors.New("mailbox: mailbox in use")        // another session holds the mailbox
	ErrClosed = errors.New("mailbox: store is not running")  // Run has returned
	ErrDone   = errors.New("mailbox: session already ended") // Session used after Commit/Close
)

// Options configure a Store.
type Options struct {
	Root   string      // directory holding one Maildir per user: Root/<user>/{new,cur,tmp}
	Users  []string    // accounts (full addresses); one actor each, created at New
	Logger *zap.Logger // nil means no logging
}

// Store is the set of mailboxes of one mail host.
type Store struct {
	log     *zap.Logger
	root    string
	mu      sync.RWMutex
	actors  map[string]*actor // under mu: Add may add to it while Run runs
	runCtx  context.Context   // under mu: Run's, for the actors Add starts; nil before Run
	stopped bool              // under mu: Run's ctx is done; Add starts no actor
	wg      sync.WaitGroup    // the running actors
	host    string            // escaped hostname for unique names
	pid     int
	counter atomic.Uint64
	running atomic.Bool
	done    chan struct{} // closed when Run returns
	// noLink is set once a link from the spool into a Maildir met EXDEV:
	// they are on two file systems, every later delivery copies.
	noLink atomic.Bool
	// failLink, set by tests before Run, fails links into new/ (to take
	// the copy fallback); nil in production.
	failLink func() error
}

// maxBatch is the most deliveries one new/ fsync covers (group commit). A
// batch only holds requests already waiting, so this bounds latency, not
// throughput.
const maxBatch = 128

// New validates the users, creates their Maildirs (0700) and one actor each.
// Every bad user name is reported at once.
func New(opt Options) (*Store, error) {
	log := opt.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opt.Root == "" {
		return nil, errors.New("mailbox: empty Root")
	}
	root, err := filepath.Abs(opt.Root)
	if err != nil {
		return nil, fmt.Errorf("mailbox: root %s: %w", opt.Root, err)
	}
	host, _ := os.Hostname()
	s := &Store{
		log:    log,
		root:   root,
		actors: make(map[string]*actor, len(opt.Users)),
		host:   escapeHost(host),
		pid:    os.Getpid(),
		done:   make(chan struct{}),
	}
	var errs []error
	for _, u := range opt.Users {
		key := address.Account(u)
		if err := validUser(key); err != nil {
			errs = append(errs, fmt.Errorf("mailbox: user %q: %w", u, err))
			continue
		}
		if _, dup := s.actors[key]; dup {
			errs = append(errs, fmt.Errorf("mailbox: user %q listed twice (case-insensitively)", u))
			continue
		}
		s.actors[key] = newActor(s, key, filepath.Join(root, key))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: create root: %w", err)
	}
	now := time.Now()
	for _, a := range s.actors {
		if err := prepare(a.dir, now); err != nil {
			return nil, err
		}
	}
	if err := syncDir(root); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs every mailbox actor until ctx is done, then returns nil once all
// of them have stopped. It may be called once.
func (s *Store) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("mailbox: Run called twice")
	}
	defer close(s.done)
	s.mu.Lock()
	s.runCtx = ctx
	for _, a := range s.actors {
		s.start(a)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// start runs a's goroutine under Run's context; s.mu is held.
func (s *Store) start(a *actor) {
	s.wg.Go(func() { a.run(s.runCtx) })
}

func (s *Store) actor(user string) (*actor, error) {
	s.mu.RLock()
	a, ok := s.actors[address.Account(user)]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, user)
	}
	return a, nil
}

// Delivery is one message for one mailbox.
type Delivery struct {
	User     string // the account: the mailbox owner
	Rcpt     string // the recipient as queued, for the log
	From     string // the envelope sender (reverse-path); "" for the null sender
	MsgID    string // the queue's msg_id: in the log and in the file name
	BodyPath string // the committed spool file, left untouched
	// Size is the spool file's length as the queue recorded it (a body is
	// never modified once committed), which spares an fstat; 0: unknown.
	Size int64
	// TraceLen > 0 says that the spool file starts with TraceLen octets of
	// trace fields (TraceFields) naming the account TraceTo. For that
	// account, the spool file is hard-linked into new/ as it is; for
	// another, the fields are skipped and the account's own written.
	TraceLen int64
	TraceTo  string
}

// Deliver stores the committed spool file at d.BodyPath, after the
// Return-Path and Delivered-To lines (traceHeaders) unless it starts with
// them (d.TraceLen: then it is linked), as a new message for d.User, under
// a name that carries d.MsgID. It returns nil only when the
// message is durable, and then logs "message delivered" with the file name.
// When ctx ends first, the message may still be delivered (at-least-once).
func (s *Store) Deliver(ctx context.Context, d Delivery) error {
	start := time.Now()
	bodyPath := d.BodyPath
	a, err := s.actor(d.User)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix := traceHeaders(d.From, a.user)
	req, size, err := s.deliverLinked(ctx, a, d, prefix)
	if req == nil {
		// The copy is staged in tmp/ here, in parallel with other
		// deliveries (it touches no mailbox state); the actor renames it
		// into new/. A body that starts with this account's trace fields
		// is copied as it is (a link that failed); one that starts with
		// another's has them skipped.
		req = &deliverReq{}
		skip := d.TraceLen
		if d.TraceLen > 0 && d.TraceTo == a.user && int64(len(prefix)) == d.TraceLen {
			prefix, skip = nil, 0
		}
		bodySize := d.Size
		if bodySize <= 0 {
			bodySize = -1
		}
		req.name, size, err = s.stage(a.dir, prefix, bodyPath, bodySize, skip, d.MsgID)
		if err == nil {
			err = s.publish(ctx, a, req)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("delivery failed", zap.String("msg_id", d.MsgID), zap.String(logvocab.User, a.user), zap.Error(err))
		}
		return err
	}
	s.log.Info("message delivered",
		zap.String("msg_id", d.MsgID),
		zap.String(logvocab.User, a.user),
		zap.String(logvocab.Rcpt, d.Rcpt),
		zap.String("file", req.name),
		zap.Int64("bytes", size),
		zap.Int64("duration_ms", time.Since(start).Milliseconds()))
	return nil
}

// deliverLinked delivers a spool file that starts with a's trace fields
// (prefix) by having the actor hard-link it into new/: the queue fsync'd
// the file before its 250, so the directory fsync the actor group-commits
// is all the link needs, and no inode is created. It returns a nil request
// when the link was not tried or failed (linkError) without creating
// anything: the caller stages a copy instead. EXDEV (the spool on another
// file system) stops the Store trying.
func (s *Store) deliverLinked(ctx context.Context, a *actor, d Delivery, prefix []byte) (*deliverReq, int64, error) {
	if d.TraceLen <= 0 || d.TraceTo != a.user || int64(len(prefix)) != d.TraceLen || s.noLink.Load() {
		return nil, 0, nil
	}
	size := d.Size
	if size <= 0 {
		fi, err := os.Stat(d.BodyPath)
		if err != nil {
			return nil, 0, fmt.Errorf("mailbox: stat %s: %w", d.BodyPath, err)
		}
		size = fi.Size()
	}
	req := &deliverReq{src: d.BodyPath, name: s.newName(d.MsgID, size)}
	err := s.publish(ctx, a, req)
	var le *linkError
	if errors.As(err, &le) {
		if errors.Is(err, syscall.EXDEV) && s.noLink.CompareAndSwap(false, true) {
			s.log.Warn("spool and mailboxes on two file systems: local delivery copies every message",
				zap.Error(err))
		}
		s.log.Debug("link into the mailbox failed, copying", zap.String("msg_id", d.MsgID), zap.Error(err))
		return nil, 0, nil
	}
	return req, size, err
}

// LinksTrace reports whether Deliver links a spool file that starts with
// the mailbox's TraceFields rather than copying it: a queue gains by
// writing them (false once a link met EXDEV).
func (s *Store) LinksTrace() bool { return !s.noLink.Load() }

// publish hands one delivery to the actor and waits for its answer. When
// ctx ends first, the actor finishes (or undoes) the delivery on its own; a
// copy staged in tmp/ that never reached the actor is removed here.
func (s *Store) publish(ctx context.Context, a *actor, req *deliverReq) error {
	req.reply = make(chan error, 1)
	if err := a.send(ctx, req); err != nil {
		os.Remove(filepath.Join(a.dir, dirTmp, req.name))
		return err
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open locks user's mailbox for one POP3 session and snapshots its listing.
// ErrNoUser for an unknown user, ErrInUse when another session holds it.
func (s *Store) Open(ctx context.Context, user string) (*Session, error) {
	a, err := s.actor(user)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ss := &Session{a: a}
	req := &openReq{ss: ss, reply: make(chan error, 1)}
	if err := a.send(ctx, req); err != nil {
		return nil, err
	}
	select {
	case err = <-req.reply:
	case <-ctx.Done():
		// The actor may grant the lock after we gave up: release it, or
		// the mailbox would stay locked with nobody to unlock it.
		ss.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return ss, nil
}
