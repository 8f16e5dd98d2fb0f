package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"gomta/mta/config"
)

// clusterName is the NATS cluster name of every gomta cluster: JetStream
// needs a fixed one (a dynamic name is refused), and the nodes of one
// cluster are told apart by their routes, not by this name.
const clusterName = "gomta"

// routeUser is the user name routes and clients give with the cluster's
// secret as password: NATS simple authentication needs a name.
const routeUser = "gomta"

// serverOptions are the embedded server's options for node c, whose
// shared secret is secret ("" for none), and the password mtad's own
// in-process connection gives ("" for none).
//
// With nats_listen the client port takes the secret (when there is one).
// Without it no client of another process may connect: a lone node opens
// no client port at all (DontListen). A node with routes must listen all
// the same: nats-server starts routing only once its client listener is
// up, and with DontListen never does; so it listens on a loopback port the
// system chooses, with a password made for this process alone, which only
// mtad's in-process connection knows. Without routes the node runs
// JetStream standalone: a clustered JetStream with nobody to route to
// refuses to start.
func serverOptions(c *config.Cluster, dataDir, secret string) (*server.Options, string, error) {
	opts := &server.Options{
		ServerName: c.Node,
		JetStream:  true,
		StoreDir:   c.StorePath(dataDir),
		SyncAlways: c.SyncAlways,
		MaxPayload: c.MaxPayload,
		NoSigs:     true, // mtad owns the signals
		NoLog:      true, // the bridge below is set instead
	}
	clientPass := secret
	switch {
	case c.NATSListen != "":
		var err error
		if opts.Host, opts.Port, err = splitHostPort(c.NATSListen); err != nil {
			return nil, "", fmt.Errorf("cluster: nats_listen: %w", err)
		}
	case len(c.Routes) == 0:
		opts.DontListen = true
	default:
		opts.Host, opts.Port, clientPass = "127.0.0.1", server.RANDOM_PORT, rand.Text()
	}
	if clientPass != "" {
		opts.Username, opts.Password = routeUser, clientPass
	}
	if err := setTLS(opts, c); err != nil {
		return nil, "", err
	}
	if len(c.Routes) == 0 {
		return opts, clientPass, nil
	}
	opts.Cluster.Name = clusterName
	var err error
	if opts.Cluster.Host, opts.Cluster.Port, err = splitHostPort(c.ClusterListen); err != nil {
		return nil, "", fmt.Errorf("cluster: cluster_listen: %w", err)
	}
	if secret != "" {
		// Routes the server learns from its peers (gossip) are dialled
		// with these too.
		opts.Cluster.Username, opts.Cluster.Password = routeUser, secret
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, "", fmt.Errorf("cluster: route %q: %w", config.RedactURL(r), err)
		}
		if secret != "" {
			u.User = url.UserPassword(routeUser, secret)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return opts, clientPass, nil
}

// tlsTimeout bounds a TLS handshake on the client and cluster ports.
const tlsTimeout = 5 // seconds, as nats-server counts it

// setTLS makes the client port (nats_listen, or the internal one) and the
// cluster port speak TLS only when c has its files: the node serves its
// certificate, and a route it dials checks the peer's against tls_ca and
// the route's host. Client certificates are not asked for: the secret
// says who may connect. mtad's in-process connection needs no TLS (the
// server exempts it).
func setTLS(opts *server.Options, c *config.Cluster) error {
	if !c.TLS() {
		return nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey, CaFile: c.TLSCA})
	if err != nil {
		return fmt.Errorf("cluster: tls: %w", err)
	}
	opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tc, tlsTimeout
	if len(c.Routes) > 0 {
		// A node dials its routes too: tls_ca checks the peers it dials
		// (GenTLSConfig fills only the pool that checks clients).
		rc := tc.Clone()
		rc.RootCAs = rc.ClientCAs
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = rc, tlsTimeout
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return host, port, nil
}

// startServer runs the embedded NATS server and waits until it takes
// connections: its listeners are open (or one failed: an error at once) and
// JetStream has read its store.
// It returns the password of mtad's in-process connection ("" for none).
func startServer(ctx context.Context, c *config.Cluster, dataDir, secret string, log *zap.Logger) (*server.Server, string, error) {
	opts, clientPass, err := serverOptions(c, dataDir, secret)
	if err != nil {
		return nil, "", err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("cluster: nats server: %w", err)
	}
	bridge := &serverLog{log: log.With(zap.String("node", c.Node))}
	s.SetLoggerV2(bridge, false, false, false)
	go s.Start()
	deadline := time.Now().Add(readyTimeout)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	// Polled in short steps, so that a listener that failed (a port in
	// use) ends the wait at once instead of at the deadline.
	for !s.ReadyForConnections(100 * time.Millisecond) {
		if msg := bridge.fatal(); msg != "" {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, "", fmt.Errorf("cluster: nats server: %s", msg)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, "", fmt.Errorf("cluster: nats server not ready for connections (nats_listen %q)", c.NATSListen)
		}
	}
	return s, clientPass, nil
}

// serverLog bridges the NATS server's log to zap: warnings and errors with
// constant messages and the server's text as the error field; its notices,
// debug and trace lines are left out (the server is chatty at start). The
// first fatal error is kept for startServer.
type serverLog struct {
	log       *zap.Logger
	mu        sync.Mutex
	fatalText string
	routeLast time.Time // when a route connect failure was last logged
}

// routeConnFmt is the server's line for a failed route connection, which
// it repeats every second while a peer is down: logged as a warning (a
// peer down is the case a cluster is for), once per routeLogEvery.
const (
	routeConnFmt  = "Error trying to connect to route (attempt %v): %v"
	routeLogEvery = 30 * time.Second
)

func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}

func (l *serverLog) Warnf(format string, v ...any) {
	l.log.Warn("nats server warning", zap.String("error", fmt.Sprintf(format, v...)))
}

func (l *serverLog) Errorf(format string, v ...any) {
	if format == routeConnFmt {
		l.mu.Lock()
		quiet := time.Since(l.routeLast) < routeLogEvery
		if !quiet {
			l.routeLast = time.Now()
		}
		l.mu.Unlock()
		if !quiet {
			l.log.Warn("nats route unreachable", zap.String("error", fmt.Sprintf(format, v...)))
		}
		return
	}
	l.log.Error("nats server error", zap.String("error", fmt.Sprintf(format, v...)))
}

// Fatalf logs as an error: the server's own logger would exit the
// process, which only mtad's main may do.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("nats server fatal error", zap.String("error", msg))
	l.mu.Lock()
	if l.fatalText == "" {
		l.fatalText = msg
	}
	l.mu.Unlock()
}

func (l *serverLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalText
}
