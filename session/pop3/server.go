package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/session/limit"
	"gomta/session/logvocab"
	"gomta/session/metrics"
	"gomta/session/serve"
)

// Defaults for zero Config fields.
const (
	// DefaultIdleTimeout is RFC 1939 §3's minimum autologout timer: "at least
	// 10 minutes".
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxErrors is how many -ERR replies a session gets before it is
	// told "-ERR too many errors" and closed.
	DefaultMaxErrors = 10
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	Hostname    string        // greeting and sign-off text
	IdleTimeout time.Duration // per command read and per reply write; 0 = DefaultIdleTimeout
	MaxErrors   int           // -ERR replies before close; 0 = DefaultMaxErrors; negative = no limit
	Logger      *zap.Logger   // parent of one child per session; nil = no logging

	// TLSConfig, when set, enables STLS (RFC 2595 §4) and is used by
	// ServeTLS. It needs at least one certificate.
	TLSConfig *tls.Config
	// AllowPlainAuth says whether USER/PASS and AUTH PLAIN may be used by a
	// client that is not under TLS; nil allows them everywhere. When it says
	// no, CAPA omits USER and SASL and those commands are refused with
	// "-ERR [AUTH] ... use STLS first" (RFC 2595 §2).
	AllowPlainAuth func(remote net.Addr) bool
	// Limiter, when set, limits connections and failed logins; it may be
	// shared with other servers. nil = no limits.
	Limiter *limit.Limiter
	// Metrics counts sessions, TLS handshakes and failed logins; nil = not
	// counted.
	Metrics *metrics.Sessions
}

// Server accepts POP3 connections and runs one session goroutine per
// connection. Its zero value is not usable; call NewServer. Its
// configuration can be replaced while it serves (Reconfigure); each session
// keeps the one current when it started.
type Server struct {
	cfg   atomic.Pointer[Config]
	be    Backend
	log   *zap.Logger
	shell *serve.Shell // accept loop, limiter, live sessions, Shutdown

	bufs sync.Pool // *[]byte of copyBufSize, for streaming RETR
}

// copyBufSize is the chunk in which RETR streams a message.
const copyBufSize = 16 << 10

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, copyBufSize)
	return &b
}

func (s *Server) putBuf(b *[]byte) { s.bufs.Put(b) }

// NewServer returns a Server answering from be.
func NewServer(cfg Config, be Backend) *Server {
	cfg = cfg.withDefaults()
	log := cfg.Logger.With(zap.String(logvocab.Proto, logvocab.POP3), zap.String(logvocab.Host, cfg.Hostname))
	s := &Server{be: be, log: log, shell: serve.New(log, cfg.Limiter, cfg.Metrics)}
	s.cfg.Store(&cfg)
	return s
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Reconfigure makes cfg the configuration of the sessions that start from
// now on; a session in progress keeps the one it started with. Hostname,
// Logger, Limiter and Metrics stay those given to NewServer (the accept
// loop and the log lines hold them).
func (s *Server) Reconfigure(cfg Config) {
	old := s.cfg.Load()
	cfg.Hostname, cfg.Logger, cfg.Limiter, cfg.Metrics = old.Hostname, old.Logger, old.Limiter, old.Metrics
	cfg = cfg.withDefaults()
	s.cfg.Store(&cfg)
}

// Serve accepts connections on l until l fails or Shutdown is called; it
// returns nil in the latter case. Serve may run on several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	if err := s.shell.Serve(l, s.sessionFor); err != nil {
		return fmt.Errorf("pop3: accept: %w", err)
	}
	return nil
}

// ServeTLS is Serve on an implicit-TLS port (pop3s, RFC 8314 §3.3): every
// connection on l starts with a TLS handshake using Config.TLSConfig.
func (s *Server) ServeTLS(l net.Listener) error {
	tc := s.cfg.Load().TLSConfig
	if tc == nil {
		l.Close()
		return errors.New("pop3: ServeTLS without Config.TLSConfig")
	}
	return s.Serve(tls.NewListener(l, tc))
}

// ServeConn runs one session on an established connection and returns when
// it ends. The connection is closed on return. A *tls.Conn is taken for an
// implicit-TLS session (its handshake is run here, under the idle timeout).
func (s *Server) ServeConn(conn net.Conn) {
	s.shell.ServeConn(conn, s.sessionFor)
}

// sessionFor is the shell's serve.NewSession: a session the limiter refused
// only answers "-ERR [SYS/TEMP] too many connections" and ends.
func (s *Server) sessionFor(conn net.Conn, refused error) serve.Session {
	sess := s.newSession(conn)
	sess.refused = refused
	return sess
}

// Shutdown stops accepting, tells idle sessions "-ERR [SYS/TEMP] server
// shutting down" and closes them without UPDATE (nothing is deleted), lets a
// command in progress finish first, and waits for every session to end. When
// ctx expires first it cuts the remaining connections, cancels their backend
// calls and returns ctx.Err(); calling Shutdown again then waits for the
// cut sessions to be gone.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shell.Shutdown(ctx)
}

// Sessions is the number of POP3 sessions open now.
func (s *Server) Sessions() int { return s.shell.Sessions() }
