package smtp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/session/limit"
)

// Defaults for the zero values of Config.
const (
	defaultMaxSize     = 32 << 20        // octets
	defaultMaxRcpts    = 100             // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted
	defaultMaxErrors   = 10              // refused commands before 421 and close
	defaultCmdTimeout  = 5 * time.Minute // RFC 5321 §4.5.3.2.7: server timeout waiting for the next command
	defaultDataTimeout = 10 * time.Minute
	// defaultSessionTimeout bounds a whole session, so that a client that
	// trickles commands just inside CmdTimeout cannot hold a slot for ever.
	defaultSessionTimeout = 30 * time.Minute
	// defaultMaxReceived is the number of Received header fields beyond which a
	// message is refused as looping: RFC 5321 §6.3 asks for a threshold of
	// "normally at least 100".
	defaultMaxReceived = 100
)

// Config is the configuration of one SMTP server (one mail host's listener).
// Zero values mean the defaults above.
type Config struct {
	Hostname    string              // this mail host's name: greeting, EHLO reply, Received header
	MaxSize     int64               // SIZE limit in octets; 0 = default 32 MiB
	MaxRcpts    int                 // recipients per message; 0 = default 100 (RFC 5321 §4.5.3.1.8); beyond: 452 4.5.3
	MaxErrors   int                 // errors before 421 4.7.0 and close; 0 = default 10
	CmdTimeout  time.Duration       // idle wait for a command; 0 = default 5m (RFC 5321 §4.5.3.2.7)
	DataTimeout time.Duration       // max time for the whole DATA phase; 0 = default 10m
	Trusted     func(net.Addr) bool // nil = nothing trusted; sets Conn.Trusted
	Logger      *zap.Logger         // child per session with proto=smtp, session_id, remote

	// SessionTimeout bounds a whole session; 0 = default 30m. Beyond: 421 4.4.2 and close.
	SessionTimeout time.Duration
	// TLSConfig, when set, makes STARTTLS offered (RFC 3207) and is the
	// configuration of ServeTLS (implicit TLS, RFC 8314).
	TLSConfig *tls.Config
	// Auth checks an account's password for AUTH PLAIN and LOGIN (RFC 4954);
	// nil = no AUTH offered. The implementation compares in constant time.
	Auth func(ctx context.Context, user, pass string) bool
	// AllowPlainAuth tells whether AUTH is offered to remote before TLS;
	// nil = only under TLS (RFC 4954 §4 encourages this; 538 5.7.11 otherwise).
	AllowPlainAuth func(remote net.Addr) bool
	// Limiter bounds connections in total and per client address, and failed
	// logins; nil = no limits.
	Limiter *limit.Limiter
	// MaxReceived is the most Received header fields a message may have,
	// counting the one this server adds; 0 = default 100 (RFC 5321 §6.3).
	// Beyond: 554 5.4.6 at the end of DATA (mail loop).
	MaxReceived int
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		}
	}
	if c.MaxSize <= 0 {
		c.MaxSize = defaultMaxSize
	}
	if c.MaxRcpts <= 0 {
		c.MaxRcpts = defaultMaxRcpts
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = defaultMaxErrors
	}
	if c.CmdTimeout <= 0 {
		c.CmdTimeout = defaultCmdTimeout
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = defaultDataTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.MaxReceived <= 0 {
		c.MaxReceived = defaultMaxReceived
	}
	if c.AllowPlainAuth == nil {
		c.AllowPlainAuth = func(net.Addr) bool { return false }
	}
	if c.Trusted == nil {
		c.Trusted = func(net.Addr) bool { return false }
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Server accepts SMTP connections and runs one session goroutine for each.
type Server struct {
	cfg     Config
	be      Backend
	chunks  sync.Pool // *[chunkSize]byte, the DATA streaming buffers
	writers sync.Pool // *bufio.Writer, held by a session only from its first reply line to the flush

	// ctx is given to the backend; it is cancelled when Shutdown gives up
	// waiting and cuts the remaining connections.
	ctx    context.Context
	cancel context.CancelFunc

	closing atomic.Bool // Shutdown was called

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	drained   chan struct{} // closed once closing and no session is left
	isDrained bool
}

// NewServer returns a server for cfg that asks be about every transaction.
func NewServer(cfg Config, be Backend) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg.withDefaults(),
		be:        be,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		drained:   make(chan struct{}),
	}
	s.chunks.New = func() any { return new([chunkSize]byte) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, 4096) }
	return s
}

// Serve accepts connections on l until Shutdown is called (it then returns
// nil) or l fails. It may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, false)
}

// ServeTLS is Serve for implicit TLS (submissions, RFC 8314 §3.3): each
// session starts with a TLS handshake under Config.TLSConfig, then the
// greeting. STARTTLS is not offered on such a session.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLSConfig == nil {
		l.Close()
		return errors.New("smtp: ServeTLS without Config.TLSConfig")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	for {
		nc, err := limit.Accept(l, s.closing.Load, s.cfg.Logger)
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			return err
		}
		sess := s.newSession(nc)
		sess.implicitTLS = implicitTLS
		// The limiter is asked here, in the accept loop, so that the count
		// is exact; the refusal itself is sent by the session goroutine.
		if sess.release, err = s.cfg.Limiter.Accept(nc.RemoteAddr()); err != nil {
			sess.refused = err
		}
		if !s.track(sess) {
			nc.Close()
			return nil
		}
		go sess.run()
	}
}

// track registers a session; false once the server is closing.
func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

// untrack forgets an ended session.
func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	s.checkDrained()
}

// checkDrained closes drained when closing with no session left; s.mu held.
func (s *Server) checkDrained() {
	if s.closing.Load() && len(s.sessions) == 0 && !s.isDrained {
		s.isDrained = true
		close(s.drained)
	}
}

// Shutdown stops accepting connections. A session waiting for its next command
// is sent "421 4.3.2" and closed; a session in the middle of a command finishes
// it, sends its reply, then gets the 421. Shutdown returns nil when every
// session has ended, or ctx's error after cutting the connections that remain
// when ctx is done (their backend context is cancelled too).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.wake()
	}
	s.checkDrained()
	s.mu.Unlock()

	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for sess := range s.sessions {
		sess.nc.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}

// sessionID returns a short random identifier for logs.
func sessionID() string {
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return base32.StdEncoding.EncodeToString(b[:])
}
