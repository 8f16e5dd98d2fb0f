package cluster

import (
	"context"
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

// serverOptions are the embedded server's options for node c. Without
// routes the node runs JetStream standalone: a clustered JetStream with
// nobody to route to refuses to start.
func serverOptions(c *config.Cluster, dataDir string) (*server.Options, error) {
	host, port, err := splitHostPort(c.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats_listen: %w", err)
	}
	opts := &server.Options{
		ServerName: c.Node,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   c.StorePath(dataDir),
		SyncAlways: c.SyncAlways,
		MaxPayload: c.MaxPayload,
		NoSigs:     true, // mtad owns the signals
		NoLog:      true, // the bridge below is set instead
	}
	if len(c.Routes) == 0 {
		return opts, nil
	}
	opts.Cluster.Name = clusterName
	if opts.Cluster.Host, opts.Cluster.Port, err = splitHostPort(c.ClusterListen); err != nil {
		return nil, fmt.Errorf("cluster: cluster_listen: %w", err)
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("cluster: route %q: %w", r, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return opts, nil
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
func startServer(ctx context.Context, c *config.Cluster, dataDir string, log *zap.Logger) (*server.Server, error) {
	opts, err := serverOptions(c, dataDir)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
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
			return nil, fmt.Errorf("cluster: nats server: %s", msg)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("cluster: nats server not ready for connections (nats_listen %s)", c.NATSListen)
		}
	}
	return s, nil
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
