package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/session/limit"
	"gomta/session/metrics"
	"gomta/session/serve"
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

// NoLimit, as MaxSize, MaxRcpts or MaxErrors, switches that limit off.
const NoLimit = -1

// Config is the configuration of one SMTP server (one mail host's listener).
// Zero values mean the defaults above.
type Config struct {
	Hostname    string              // this mail host's name: greeting, EHLO reply, Received header
	MaxSize     int64               // SIZE limit in octets; 0 = default 32 MiB; NoLimit = none
	MaxRcpts    int                 // recipients per message; 0 = default 100 (RFC 5321 §4.5.3.1.8); beyond: 452 4.5.3; NoLimit = none
	MaxErrors   int                 // errors before 421 4.7.0 and close; 0 = default 10; NoLimit = none
	CmdTimeout  time.Duration       // idle wait for a command; 0 = default 5m (RFC 5321 §4.5.3.2.7)
	DataTimeout time.Duration       // max time for the whole DATA phase, and for each BDAT chunk; 0 = default 10m
	Trusted     func(net.Addr) bool // nil = nothing trusted; sets Peer.Trusted
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
	// Metrics counts sessions, replies by class, accepted messages, TLS
	// handshakes and failed logins; nil = not counted.
	Metrics *metrics.Sessions
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		}
	}
	c.MaxSize = orDefault(c.MaxSize, defaultMaxSize)
	c.MaxRcpts = orDefault(c.MaxRcpts, defaultMaxRcpts)
	c.MaxErrors = orDefault(c.MaxErrors, defaultMaxErrors)
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

// orDefault is v, or def for 0, or NoLimit for any negative v.
func orDefault[T int | int64](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return NoLimit
	}
	return v
}

// Server accepts SMTP connections and runs one session goroutine for each.
// Its configuration can be replaced while it serves (Reconfigure): each
// session reads the one current when it started, so that no session sees a
// limit change under it.
type Server struct {
	cfg     atomic.Pointer[Config]
	be      Backend
	shell   *serve.Shell // accept loop, limiter, live sessions, Shutdown
	chunks  sync.Pool    // *[chunkSize]byte, the DATA streaming buffers
	writers sync.Pool    // *bufio.Writer, held by a session only from its first reply line to the flush
	readers sync.Pool    // *bufio.Reader, held by a session only while it has input buffered (inbuf.go)
	inbufs  sync.Pool    // *[readBufSize]byte, the first read after an idle wait
}

// NewServer returns a server for cfg that asks be about every transaction.
func NewServer(cfg Config, be Backend) *Server {
	cfg = cfg.withDefaults()
	s := &Server{be: be, shell: serve.New(cfg.Logger, cfg.Limiter, cfg.Metrics)}
	s.cfg.Store(&cfg)
	s.chunks.New = func() any { return new([chunkSize]byte) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, 4096) }
	s.readers.New = func() any { return bufio.NewReaderSize(nil, readBufSize) }
	s.inbufs.New = func() any { return new([readBufSize]byte) }
	return s
}

// Serve accepts connections on l until Shutdown is called (it then returns
// nil) or l fails. It may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	return s.shell.Serve(l, s.sessionFor(false))
}

// ServeTLS is Serve for implicit TLS (submissions, RFC 8314 §3.3): each
// session starts with a TLS handshake under Config.TLSConfig, then the
// greeting. STARTTLS is not offered on such a session.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.Load().TLSConfig == nil {
		l.Close()
		return errors.New("smtp: ServeTLS without Config.TLSConfig")
	}
	return s.shell.Serve(l, s.sessionFor(true))
}

// sessionFor makes the sessions of one listener. A session the limiter
// refused only answers 421 (in plain text only) and ends.
func (s *Server) sessionFor(implicitTLS bool) serve.NewSession {
	return func(nc net.Conn, refused error) serve.Session {
		sess := s.newSession(nc)
		sess.implicitTLS = implicitTLS
		sess.refused = refused
		return sess
	}
}

// Reconfigure makes cfg the configuration of the sessions that start from
// now on; a session in progress keeps the one it started with. Logger,
// Limiter and Metrics stay those given to NewServer: the accept loop holds
// them (the Limiter has its own Reconfigure).
func (s *Server) Reconfigure(cfg Config) {
	old := s.cfg.Load()
	cfg.Logger, cfg.Limiter, cfg.Metrics = old.Logger, old.Limiter, old.Metrics
	cfg = cfg.withDefaults()
	s.cfg.Store(&cfg)
}

// Shutdown stops accepting connections. A session waiting for its next command
// is sent "421 4.3.2" and closed; a session in the middle of a command finishes
// it, sends its reply, then gets the 421. Shutdown returns nil when every
// session has ended, or ctx's error after cutting the connections that remain
// when ctx is done (their backend context is cancelled too).
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shell.Shutdown(ctx)
}

// Sessions is the number of SMTP sessions open now.
func (s *Server) Sessions() int { return s.shell.Sessions() }
