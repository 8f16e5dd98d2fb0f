// Package serve owns the server shell that gomta's SMTP and POP3 servers
// share around their protocol sessions: the accept loop with back-off, the
// admission of each connection by the connection limiter, the set of live
// sessions, and Shutdown(ctx), which closes the listeners, wakes the sessions
// waiting for a command, waits for every session to end, and cuts the
// connections left when ctx is done. It also holds the two rules both
// protocols apply inside a session: the error budget (Errors) and how a
// recovered panic is logged (Recover); and the one format of the session ids
// both log (SessionID).
//
// Invariants: every accepted connection either runs as a session or is closed
// here; a limiter slot taken for a connection is given back exactly once,
// after its session has ended, or at once when the session never runs; once
// Shutdown has begun no session starts; the context handed to backends
// (Context) is cancelled only when Shutdown cuts or has drained every session.
package serve

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"gomta/session/limit"
	"gomta/session/metrics"
)

// Session is one connection's protocol session as the shell drives it.
type Session interface {
	// Run runs the session to its end and closes its connection. It is
	// called once, on the session's own goroutine.
	Run()
	// Wake interrupts the session's wait for its next command, so that it
	// sees Closing and answers with its shutdown reply; a command in
	// progress finishes first. It may be called from any goroutine.
	Wake()
	// Cut closes the connection at once: Shutdown's ctx is done.
	Cut()
}

// NewSession makes the session of an accepted connection. refused is the
// limiter's refusal (nil when admitted): such a session only answers it with
// the protocol's temporary-refusal reply and ends.
type NewSession func(nc net.Conn, refused error) Session

// Shell accepts connections and tracks their sessions for one server.
type Shell struct {
	log     *zap.Logger
	limiter *limit.Limiter
	counts  *metrics.Sessions // nil: not counted

	// ctx is handed to backends; cancel ends it when Shutdown cuts or has
	// drained every session.
	ctx    context.Context
	cancel context.CancelFunc

	closing atomic.Bool // Shutdown was called

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[Session]struct{}
	drained   chan struct{} // closed once closing and no session is left
	isDrained bool
}

// New returns a shell that logs accept failures to log, admits connections
// through lim (nil: no limits) and counts its sessions in counts (nil: not
// counted).
func New(log *zap.Logger, lim *limit.Limiter, counts *metrics.Sessions) *Shell {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Shell{
		log:       log,
		limiter:   lim,
		counts:    counts,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[Session]struct{}{},
		drained:   make(chan struct{}),
	}
}

// Context is the context of the sessions' backend calls.
func (sh *Shell) Context() context.Context { return sh.ctx }

// Closing reports whether Shutdown has begun. A session checks it before it
// waits for a command, after arming its read deadline (which Wake moves to
// now), so that it either sees Closing or is woken.
func (sh *Shell) Closing() bool { return sh.closing.Load() }

// Serve accepts connections on l and runs a session for each until Shutdown
// is called (it then returns nil) or l fails. It may run on several
// listeners at once. The limiter is asked here, in the accept loop, so that
// connections are admitted in the order they were accepted.
func (sh *Shell) Serve(l net.Listener, newSession NewSession) error {
	if !sh.addListener(l) {
		l.Close()
		return nil
	}
	defer sh.removeListener(l)
	for {
		nc, err := acceptWithBackoff(l, sh.Closing, sh.log)
		if err != nil {
			if sh.Closing() {
				return nil
			}
			return err
		}
		sess, release, ok := sh.admit(nc, newSession)
		if !ok {
			return nil
		}
		go sh.run(sess, release)
	}
}

// ServeConn runs one session on an established connection, as Serve would,
// and returns when it has ended. A connection that comes once Shutdown has
// begun is closed without a session.
func (sh *Shell) ServeConn(nc net.Conn, newSession NewSession) {
	if sess, release, ok := sh.admit(nc, newSession); ok {
		sh.run(sess, release)
	}
}

// admit asks the limiter about nc and tracks its session. When Shutdown has
// begun it gives the slot back, closes nc and reports false.
func (sh *Shell) admit(nc net.Conn, newSession NewSession) (Session, func(), bool) {
	release, refused := sh.limiter.Accept(nc.RemoteAddr())
	sess := newSession(nc, refused)
	if !sh.track(sess) {
		if release != nil {
			release()
		}
		nc.Close()
		return nil, nil, false
	}
	return sess, release, true
}

// run runs a tracked session, then gives its slot back and forgets it.
// A session the limiter refused is counted too: it is a connection served
// (with a refusal).
func (sh *Shell) run(sess Session, release func()) {
	sh.counts.Opened()
	defer sh.untrack(sess)
	defer sh.counts.Closed()
	if release != nil {
		defer release()
	}
	sess.Run()
}

// Shutdown stops accepting connections and wakes the sessions waiting for a
// command; each answers with its shutdown reply and ends, a session in the
// middle of a command first finishing it. Shutdown returns nil once every
// session has ended, or ctx's error after cutting the connections left when
// ctx is done (their backend context is cancelled too). Calling it again
// waits for the sessions that were cut to be gone.
func (sh *Shell) Shutdown(ctx context.Context) error {
	sh.mu.Lock()
	sh.closing.Store(true)
	for l := range sh.listeners {
		l.Close()
	}
	for sess := range sh.sessions {
		sess.Wake()
	}
	sh.checkDrained()
	sh.mu.Unlock()

	select {
	case <-sh.drained:
		sh.cancel()
		return nil
	case <-ctx.Done():
	}
	sh.cancel()
	sh.mu.Lock()
	for sess := range sh.sessions {
		sess.Cut()
	}
	sh.mu.Unlock()
	return ctx.Err()
}

// Sessions is the number of sessions running now (refused ones that are
// still answering count too, until they end).
func (sh *Shell) Sessions() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.sessions)
}

// addListener registers l; false once the shell is closing.
func (sh *Shell) addListener(l net.Listener) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.Closing() {
		return false
	}
	sh.listeners[l] = struct{}{}
	return true
}

func (sh *Shell) removeListener(l net.Listener) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.listeners, l)
}

// track registers a session; false once the shell is closing.
func (sh *Shell) track(sess Session) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.Closing() {
		return false
	}
	sh.sessions[sess] = struct{}{}
	return true
}

// untrack forgets an ended session.
func (sh *Shell) untrack(sess Session) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.sessions, sess)
	sh.checkDrained()
}

// checkDrained closes drained when closing with no session left; sh.mu held.
func (sh *Shell) checkDrained() {
	if sh.Closing() && len(sh.sessions) == 0 && !sh.isDrained {
		sh.isDrained = true
		close(sh.drained)
	}
}
