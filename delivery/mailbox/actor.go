package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"gomta/session/logvocab"
)

// errPanic answers a request whose handling panicked; the actor goes on.
var errPanic = errors.New("mailbox: internal error")

// request is a message to a mailbox actor. Each carries its own buffered-1
// reply channel, so the actor never blocks on a caller that gave up.
type request interface {
	// fail answers the request with err unless it was answered already.
	fail(err error)
}

// deliverReq publishes a message staged as tmp/<name> by renaming it into
// new/<name>, or, when src is set, by hard-linking the spool file src
// (which starts with this mailbox's trace fields) into new/<name>.
type deliverReq struct {
	name  string // unique name in tmp/ (unless src is set) and, once answered, in new/
	src   string // the spool file to link, "" for a staged copy
	reply chan error
}

// linkError is a link into new/ that failed: the delivery falls back to a
// staged copy (EXDEV: the spool and the Maildir on two file systems;
// EMLINK, EPERM...).
type linkError struct{ err error }

func (e *linkError) Error() string { return "mailbox: link: " + e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// openReq takes the POP3 lock for ss and fills ss.list.
type openReq struct {
	ss    *Session
	reply chan error
}

// commitReq deletes ss.list[i] for i in del and releases ss's lock.
type commitReq struct {
	ss    *Session
	del   []int
	reply chan error
}

// closeReq releases ss's lock, if it holds it.
type closeReq struct {
	ss    *Session
	reply chan error
}

func answer(c chan error, err error) {
	select {
	case c <- err:
	default: // answered already
	}
}

func (r *deliverReq) fail(err error) { answer(r.reply, err) }
func (r *openReq) fail(err error)    { answer(r.reply, err) }
func (r *commitReq) fail(err error)  { answer(r.reply, err) }
func (r *closeReq) fail(err error)   { answer(r.reply, err) }

// actor owns one mailbox. Only its run goroutine reads or writes holder and
// renames or removes files in new/ and cur/.
type actor struct {
	s    *Store
	log  *zap.Logger
	user string // folded address
	dir  string // the Maildir
	reqs chan request

	holder *Session  // POP3 lock holder; nil when unlocked
	newDir dirHandle // new/, open while deliveries keep coming
}

// newDirIdle is how long an actor keeps new/ open after its last delivery:
// long enough to span the gaps of a steady stream, short enough that the
// descriptors held stay few (at most one per mailbox delivered to in the
// last newDirIdle) however many mailboxes the host has.
const newDirIdle = 100 * time.Millisecond

func newActor(s *Store, user, dir string) *actor {
	return &actor{
		s:      s,
		log:    s.log.With(zap.String(logvocab.User, user)),
		user:   user,
		dir:    dir,
		reqs:   make(chan request),
		newDir: newDirHandle(filepath.Join(dir, dirNew)),
	}
}

// send hands req to the actor, giving up when ctx ends or the Store stops.
func (a *actor) send(ctx context.Context, req request) error {
	select {
	case a.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.s.done:
		return ErrClosed
	}
}

// run serves requests until ctx is done. new/ is closed once no delivery
// has come for newDirIdle.
func (a *actor) run(ctx context.Context) {
	idle := time.NewTimer(newDirIdle)
	defer idle.Stop()
	defer a.newDir.close()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.reqs:
			a.serveSafe(r)
			if a.newDir.isOpen() {
				idle.Reset(newDirIdle)
			}
		case <-idle.C:
			a.newDir.close()
		}
	}
}

// serveSafe is serve with a last-resort recover, so that a panic outside a
// handler (an unknown request type) does not stop the actor either.
func (a *actor) serveSafe(r request) {
	defer a.recoverTo(r)
	a.serve(r)
}

// serve handles one request; a delivery picks up the deliveries already
// waiting and publishes them with one fsync of new/ (group commit).
func (a *actor) serve(r request) {
	var next request
	switch r := r.(type) {
	case *deliverReq:
		batch := []*deliverReq{r}
	drain:
		for len(batch) < maxBatch {
			select {
			case r2 := <-a.reqs:
				if d, ok := r2.(*deliverReq); ok {
					batch = append(batch, d)
					continue
				}
				next = r2
				break drain
			default:
				break drain
			}
		}
		a.deliver(batch)
	case *openReq:
		a.open(r)
	case *commitReq:
		a.commit(r)
	case *closeReq:
		a.close(r)
	default:
		panic(fmt.Sprintf("mailbox: unknown request %T", r))
	}
	if next != nil {
		a.serve(next) // not a delivery: no further recursion
	}
}

// recoverTo is deferred by every handler: a panic is logged with its stack
// and answered as errPanic; the actor keeps running.
func (a *actor) recoverTo(reqs ...request) {
	p := recover()
	if p == nil {
		return
	}
	a.log.Error("mailbox actor panic",
		zap.Error(fmt.Errorf("panic: %v", p)),
		zap.ByteString("stack", debug.Stack()))
	for _, r := range reqs {
		r.fail(errPanic)
	}
}

func (a *actor) deliver(batch []*deliverReq) {
	reqs := make([]request, len(batch))
	for i, d := range batch {
		reqs[i] = d
	}
	defer a.recoverTo(reqs...)

	tmpDir := filepath.Join(a.dir, dirTmp)
	errs := make([]error, len(batch))
	published := 0
	for i, d := range batch {
		if d.src != "" {
			if err := a.link(d); err != nil {
				errs[i] = &linkError{err}
				continue
			}
			published++
			continue
		}
		if err := a.newDir.renameInto(filepath.Join(tmpDir, d.name), d.name); err != nil {
			errs[i] = fmt.Errorf("mailbox: publish %s: %w", d.name, err)
			os.Remove(filepath.Join(tmpDir, d.name))
			continue
		}
		published++
	}
	if published > 0 {
		if err := a.newDir.sync(); err != nil {
			// The messages are in new/ but maybe not durable: report the
			// failure so the queue retries (at-least-once).
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
	}
	for i, d := range batch {
		d.reply <- errs[i]
	}
}

// link hard-links d.src into new/ as d.name; the Store's test hook may
// fail it first.
func (a *actor) link(d *deliverReq) error {
	if a.s.failLink != nil {
		if err := a.s.failLink(); err != nil {
			return err
		}
	}
	return a.newDir.linkInto(d.src, d.name)
}

func (a *actor) open(r *openReq) {
	defer a.recoverTo(r)
	if a.holder != nil {
		r.reply <- ErrInUse
		return
	}
	list, moved, err := snapshot(a.dir)
	if err != nil {
		r.reply <- err
		return
	}
	var total int64
	for _, e := range list {
		total += e.info.Size
	}
	r.ss.list, r.ss.moved = list, moved
	a.holder = r.ss
	a.log.Info("mailbox opened", zap.Int64("bytes", total))
	r.reply <- nil
}

func (a *actor) commit(r *commitReq) {
	defer a.recoverTo(r)
	if a.holder != r.ss {
		r.reply <- ErrDone
		return
	}
	a.holder = nil // released whatever happens below
	var errs []error
	deleted := 0
	for _, i := range r.del {
		e := &r.ss.list[i]
		err := os.Remove(filepath.Join(e.dir, e.file))
		if errors.Is(err, os.ErrNotExist) {
			// Another Maildir tool may have changed its flags (renamed it).
			if p, ok := e.find(); ok {
				err = os.Remove(p)
			}
		}
		switch {
		case err == nil:
			deleted++
		case errors.Is(err, os.ErrNotExist):
			// gone already: the wanted outcome
		default:
			errs = append(errs, fmt.Errorf("mailbox: delete %s: %w", e.file, err))
		}
	}
	if deleted > 0 || r.ss.moved {
		if err := syncDir(filepath.Join(a.dir, dirCur)); err != nil {
			errs = append(errs, err)
		}
	}
	if r.ss.moved {
		if err := syncDir(filepath.Join(a.dir, dirNew)); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		a.log.Warn("mailbox update failed", zap.Int("deleted", deleted), zap.Error(err))
	} else {
		a.log.Info("mailbox updated", zap.Int("deleted", deleted))
	}
	r.reply <- err
}

func (a *actor) close(r *closeReq) {
	defer a.recoverTo(r)
	if a.holder == r.ss {
		a.holder = nil
		a.log.Debug("mailbox closed")
	}
	r.reply <- nil
}
