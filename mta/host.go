package mta

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/delivery"
	"gomta/delivery/mailbox"
	"gomta/delivery/relay"
	"gomta/mta/cluster"
	"gomta/mta/config"
	"gomta/queue"
	"gomta/session/address"
	"gomta/session/limit"
	"gomta/session/logvocab"
	"gomta/session/metrics"
	"gomta/session/pop3"
	"gomta/session/smtp"
)

// Host is one running mail host: its accounts, spool, mailboxes, delivery
// worker, and SMTP and POP3 servers with their listeners.
type Host struct {
	Name      string
	Queue     queue.Spool     // the local spool or the cluster's (queue/jsq)
	Mailboxes mailbox.Backend // Maildirs or the cluster's (delivery/mailbox/jsbox)
	SMTPAddr  net.Addr        // where SMTP listens
	POP3Addr  net.Addr        // where POP3 listens

	// live is what the host decides with its config (accounts, domains,
	// settings), replaced whole by a reload; readers load it once per
	// decision.
	live    atomic.Pointer[hostConfig]
	dataDir string      // spool/ and mail/ live here
	tls     *tls.Config // the process's (nil: no TLS); its certificate is swapped in place
	log     *zap.Logger
	worker  *delivery.Worker
	relay   liveRelay   // the worker's Relayer, rebuilt when [MX] or [P] change
	pool    *relay.Pool // the relay's connections, kept across reloads; closed when the queue stops
	lim     *limit.Limiter
	smtp    *smtp.Server
	pop3    *pop3.Server
	smtpLn  net.Listener
	pop3Ln  net.Listener
	smtpsLn net.Listener // implicit TLS (submissions), nil when none
	pop3sLn net.Listener // implicit TLS (pop3s), nil when none
}

// Actor is one block of the caller's run group (oklog/run): Execute runs until
// the actor stops; Interrupt makes it stop.
type Actor struct {
	Name      string
	Execute   func() error
	Interrupt func(error)
}

// ShutdownGrace is how long open sessions get to finish at shutdown: one
// deadline for the whole process, from the first interrupt (see Stop).
const ShutdownGrace = 10 * time.Second

// Stop is the one shutdown deadline of a process, shared by all its hosts.
// The first interrupt of any host's actor starts it; every host then drains
// its sessions at the same time, until they end or the grace has passed, so
// that n hosts stop within one grace period and not n.
type Stop struct {
	grace  time.Duration
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// NewStop returns a Stop whose deadline is grace after it begins.
func NewStop(grace time.Duration) *Stop { return &Stop{grace: grace} }

// begin starts the deadline (the first call does) and returns its context.
func (s *Stop) begin() context.Context {
	s.once.Do(func() { s.ctx, s.cancel = context.WithTimeout(context.Background(), s.grace) })
	return s.ctx
}

// NewHost builds the mail host s of cfg with its data under dataDir, and opens
// its listeners (a port already in use is an error naming it). tlsConf (nil:
// no TLS) is the certificate of the process (TLSConfig). m (nil: none) is the
// process's metrics: the host's servers, queue and worker count into their
// handles for s.Name. node (nil: none) is this process's node of a
// cluster: the host's queue and mailboxes are then the cluster's.
func NewHost(cfg *config.Config, s *config.Server, dataDir string, tlsConf *tls.Config, log *zap.Logger, m *metrics.Metrics, node *cluster.Node) (*Host, error) {
	base := log // the queue and the POP3 server add the host field themselves
	hm := m.Host(s.Name)
	log = log.With(zap.String("host", s.Name))
	h := &Host{Name: s.Name, log: log, dataDir: dataDir, tls: tlsConf}
	hc := newHostConfig(cfg, s)
	h.live.Store(hc)
	h.lim = h.newLimiter(cfg)
	// The ports first: one in use fails at once, before a spool is opened
	// or a cluster's streams are provisioned (which may take a while);
	// connections wait in the listen backlog until the servers serve.
	if err := h.listenAll(cfg, s); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.openStorage(cfg, s, hc, node, base, hm); err != nil {
		h.Close()
		return nil, fmt.Errorf("host %s: %w", s.Name, err)
	}
	sc := h.smtpConfig(cfg)
	sc.Metrics = hm.SMTP
	h.smtp = smtp.NewServer(sc, smtpBackend{h})
	pc := h.pop3Config(cfg, base)
	pc.Metrics = hm.POP3
	h.pop3 = pop3.NewServer(pc, pop3Backend{h})
	h.SMTPAddr, h.POP3Addr = h.smtpLn.Addr(), h.pop3Ln.Addr()
	h.pool = relay.NewPool(relay.PoolOptions{PerDest: cfg.RelayConcurrency, Backoff: time.Duration(cfg.RelayBackoff)})
	h.relay.set(h.newRelay(cfg))
	dlog := log.With(zap.String(logvocab.Proto, logvocab.Delivery))
	h.worker = &delivery.Worker{
		Host: s.Name, MailDomain: mailDomain(s), Local: h.isLocal, Account: h.account, Mailboxes: h.Mailboxes, Relay: &h.relay,
		MaxRelay: cfg.MaxRelayConnections, Logger: dlog,
		Metrics: hm.Delivery,
	}
	// Mail to postmaster is delivered to this account (RFC 5321 §4.5.1).
	if s.Postmaster != "" {
		dlog.Info("postmaster account", zap.String(logvocab.Rcpt, s.Postmaster))
	} else {
		dlog.Warn("no postmaster account: the host has no account")
	}
	return h, nil
}

// mailDomain is the domain bounces come from (MAILER-DAEMON@...): the
// postmaster's, else the host's first domain, else its name.
func mailDomain(s *config.Server) string {
	if d := address.Domain(s.Postmaster); d != "" {
		return d
	}
	if len(s.Domains) > 0 {
		return s.Domains[0]
	}
	return s.Name
}

// relayTLS is the relay's opportunistic STARTTLS configuration: the next MTA's
// certificate is not verified (RFC 7435 opportunistic security; MX names from
// a fake DNS cannot be authenticated anyway).
func relayTLS(server *tls.Config) *tls.Config {
	if server == nil {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // opportunistic TLS between MTAs
}

func (h *Host) listenAll(cfg *config.Config, s *config.Server) error {
	var err error
	if h.smtpLn, err = listen(cfg.Listen, s.SMTPPort, s.Name, "SMTP"); err != nil {
		return err
	}
	if h.pop3Ln, err = listen(cfg.Listen, s.POPPort, s.Name, "POP3"); err != nil {
		return err
	}
	tp := cfg.ImplicitTLS[s.Name]
	if tp.SMTP != 0 {
		if h.smtpsLn, err = listen(cfg.Listen, tp.SMTP, s.Name, "SMTP (implicit TLS)"); err != nil {
			return err
		}
	}
	if tp.POP != 0 {
		if h.pop3sLn, err = listen(cfg.Listen, tp.POP, s.Name, "POP3 (implicit TLS)"); err != nil {
			return err
		}
	}
	return nil
}

func listen(ip string, port int, host, proto string) (net.Listener, error) {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	// No TCP keep-alive on accepted connections: the sessions have their own
	// command and session timeouts, and Go's default costs four setsockopt
	// calls per connection (of 56.8 system calls per message, strace -c).
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: false}, KeepAlive: -1}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		if errors.Is(err, syscallEADDRINUSE) {
			return nil, fmt.Errorf("host %s: %s port %s is already in use by another program", host, proto, addr)
		}
		return nil, fmt.Errorf("host %s: %s listen on %s: %w", host, proto, addr, err)
	}
	return l, nil
}

// Actors returns the host's run-group blocks. Interrupting any of them only
// begins the host's stop: both servers' Shutdown start at once (listeners
// closed, idle sessions woken) and the interrupt returns, so that the run
// group's interrupts, called one after another, do not wait for each other;
// the sessions drain under stop's deadline. The queue and the mailboxes stop
// only once the servers have drained, so that a DATA in progress still gets
// its message queued.
func (h *Host) Actors(stop *Stop) []Actor {
	drained := make(chan struct{})
	var once sync.Once
	begin := func(error) {
		once.Do(func() {
			ctx := stop.begin()
			go func() {
				defer close(drained)
				var wg sync.WaitGroup
				for proto, f := range map[string]func(context.Context) error{logvocab.SMTP: h.smtp.Shutdown, logvocab.POP3: h.pop3.Shutdown} {
					wg.Go(func() {
						if err := f(ctx); err != nil {
							h.log.Warn("shutdown cut open sessions", zap.String(logvocab.Proto, proto), zap.Error(err))
						}
					})
				}
				wg.Wait()
			}()
		})
	}
	coreCtx, stopCore := context.WithCancel(context.Background())
	// Each server serves several listeners; its Shutdown stops them all.
	actors := []Actor{
		{Name: h.Name + " smtp", Execute: func() error { return h.smtp.Serve(h.smtpLn) }, Interrupt: begin},
		{Name: h.Name + " pop3", Execute: func() error { return h.pop3.Serve(h.pop3Ln) }, Interrupt: begin},
	}
	if h.smtpsLn != nil {
		actors = append(actors, Actor{Name: h.Name + " smtps", Execute: func() error { return h.smtp.ServeTLS(h.smtpsLn) },
			Interrupt: begin})
	}
	if h.pop3sLn != nil {
		actors = append(actors, Actor{Name: h.Name + " pop3s", Execute: func() error { return h.pop3.ServeTLS(h.pop3sLn) },
			Interrupt: begin})
	}
	return append(actors, Actor{Name: h.Name + " queue", Execute: func() error { return h.runCore(coreCtx) },
		Interrupt: func(err error) {
			begin(err)
			go func() { <-drained; stopCore() }()
		}})
}

// Listeners describes where the host listens, for the start-up log.
func (h *Host) Listeners() []zap.Field {
	f := []zap.Field{zap.Stringer("smtp", h.SMTPAddr), zap.Stringer("pop3", h.POP3Addr)}
	if h.smtpsLn != nil {
		f = append(f, zap.Stringer("smtps", h.smtpsLn.Addr()))
	}
	if h.pop3sLn != nil {
		f = append(f, zap.Stringer("pop3s", h.pop3sLn.Addr()))
	}
	return f
}

// ListenAddrs maps each of the host's listeners ("smtp", "pop3", and
// "smtps", "pop3s" when there are) to its address.
func (h *Host) ListenAddrs() map[string]string {
	m := map[string]string{"smtp": h.SMTPAddr.String(), "pop3": h.POP3Addr.String()}
	if h.smtpsLn != nil {
		m["smtps"] = h.smtpsLn.Addr().String()
	}
	if h.pop3sLn != nil {
		m["pop3s"] = h.pop3sLn.Addr().String()
	}
	return m
}

// Sessions counts the SMTP and POP3 sessions open now (implicit TLS ones
// included).
func (h *Host) Sessions() (smtp, pop3 int) { return h.smtp.Sessions(), h.pop3.Sessions() }

// runCore runs the mailbox actors and the queue; the mailboxes stop only after
// the queue has finished its attempts in progress.
func (h *Host) runCore(ctx context.Context) error {
	mctx, stopMailboxes := context.WithCancel(context.Background())
	mdone := make(chan error, 1)
	go func() { mdone <- h.Mailboxes.Run(mctx) }()
	qerr := h.Queue.Run(ctx, h.worker)
	h.pool.Close() // no attempt is left to use a kept connection
	stopMailboxes()
	merr := <-mdone
	return errors.Join(qerr, merr)
}

// Close releases the listeners of a host whose actors never ran.
func (h *Host) Close() {
	for _, l := range []net.Listener{h.smtpLn, h.pop3Ln, h.smtpsLn, h.pop3sLn} {
		if l != nil {
			l.Close()
		}
	}
}

func (h *Host) isLocal(domain string) bool { return h.live.Load().isLocal(domain) }

// account maps an address to its account as configured; ok=false when none.
func (h *Host) account(addr string) (string, bool) { return h.live.Load().account(addr) }

// DataDir is where host s keeps its spool and mailboxes under root.
func DataDir(root string, s *config.Server) string {
	return filepath.Join(root, safeName(s.Name))
}

func safeName(n string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == os.PathSeparator {
			return '_'
		}
		return r
	}, n)
}

// Accounts lists the host's account addresses as configured.
func (h *Host) Accounts() []string { return h.live.Load().users() }

// Domains lists the host's final-destination domains.
func (h *Host) Domains() []string { return h.live.Load().srv.Domains }

// Server is the host's configuration as last loaded (at start or reload).
func (h *Host) Server() *config.Server { return h.live.Load().srv }
