// Package cluster owns a gomta node's place in a cluster on NATS JetStream
// ([gomta.cluster]): the embedded NATS server that mtad runs in-process, or
// the connection to an external NATS cluster, and the JetStream handle the
// cluster backends of the queue and the mailboxes (queue/jsq,
// delivery/mailbox/jsbox) are built on.
//
// Invariants: a *Node from Start has one NATS connection for the whole
// process, which reconnects by itself (an external cluster: forever; the
// embedded server is in the same process); JetStream may not answer yet
// (WaitReady waits for it: a node started before its peers has no meta
// leader); Close drains the connection before it shuts the embedded server
// down, and returns only when the server's listeners are closed, so that a
// new node may bind the same ports. Nothing here decides on mail: what 250
// means on top of it is the backends' contract.
//
// Whoever reaches a NATS port of the cluster can read, delete or queue
// (and so relay) any mail: an embedded node opens no client port unless
// nats_listen asks for one (a node with routes listens on an internal
// loopback port only its own process can log in to); with secret_file
// every route and every client of nats_listen must give the secret, and
// with tls_* they speak TLS. The secret is never logged, and a logged URL
// has no userinfo (config.RedactURL).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/mta/config"
)

// Timeouts of the connection. connectTimeout bounds one dial of an external
// server (a dead address is skipped for the next one); reconnectWait is the
// pause between two rounds over the URLs; drainTimeout bounds Close's wait
// for the replies in flight.
const (
	connectTimeout = 5 * time.Second
	reconnectWait  = time.Second
	drainTimeout   = 10 * time.Second
	// readyTimeout bounds the wait for the embedded server's listeners when
	// the caller's context has no deadline.
	readyTimeout = 30 * time.Second
	// tryTimeout bounds one JetStream question of WaitReady, so that a
	// request lost while the meta group elects its leader is asked again.
	tryTimeout = 2 * time.Second
	retryPause = 250 * time.Millisecond
)

// Node is this process's node of the cluster: its NATS connection and
// JetStream handle, and the embedded server when there is one.
type Node struct {
	name     string
	replicas int
	mode     string         // "embedded" or "external"
	srv      *server.Server // nil for an external cluster
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *zap.Logger
	closed   chan struct{} // closed when nc is closed for good
	once     sync.Once
}

// maxAsyncPending bounds the asynchronous publishes in flight on the node's
// JetStream context (object store chunks).
const maxAsyncPending = 16

// Start makes this process the node c of its cluster: embedded, it runs a
// NATS server with JetStream (its store in c.StorePath(dataDir)) and
// connects to it in-process; external, it connects to c.NATSURLs. It
// returns once connected (embedded) or once the connection is set up to
// retry (external), before JetStream need answer: call WaitReady. c is a
// validated config (config.Load).
func Start(ctx context.Context, c *config.Cluster, dataDir string, log *zap.Logger) (*Node, error) {
	n := &Node{name: c.Node, replicas: c.Replicas, log: log, closed: make(chan struct{})}
	// No reconnect buffer: a publish made while the connection is down
	// fails at once instead of being sent after the reconnect, when the
	// SMTP session has already answered 451 and thrown its draft away.
	opts := []nats.Option{nats.Name("gomta-" + c.Node), nats.DrainTimeout(drainTimeout), nats.ReconnectBufSize(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(n.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("cluster connection lost", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// Not ConnectedUrlRedacted: it keeps a token written as the
			// user name.
			log.Info("cluster connection restored", zap.String("url", config.RedactURL(nc.ConnectedUrl())))
		}),
	}
	secret, err := c.Secret()
	if err != nil {
		return nil, fmt.Errorf("cluster: secret_file: %w", err)
	}
	if c.Embedded {
		n.mode = "embedded"
		var clientPass string
		n.srv, clientPass, err = startServer(ctx, c, dataDir, secret, log)
		if err != nil {
			return nil, err
		}
		if clientPass != "" {
			opts = append(opts, nats.UserInfo(routeUser, clientPass))
		}
		n.nc, err = nats.Connect("", append(opts, nats.InProcessServer(n.srv))...)
	} else {
		n.mode = "external"
		// A NATS cluster not up yet is waited for (WaitReady), as an
		// embedded node waits for its peers; a lost server is reconnected
		// to for as long as the process runs.
		n.nc, err = nats.Connect(strings.Join(c.NATSURLs, ","), append(opts, nats.Timeout(connectTimeout),
			nats.MaxReconnects(-1), nats.ReconnectWait(reconnectWait), nats.RetryOnFailedConnect(true))...)
	}
	if err != nil {
		n.shutdownServer()
		return nil, fmt.Errorf("cluster: connect: %w", err)
	}
	// Object store puts publish their chunks asynchronously: without a cap
	// (the library's 4,000) a 50 MiB body would sit whole in the server's
	// ingest queue; maxAsyncPending chunks of ~128 KiB keep it to a few MiB.
	if n.js, err = jetstream.New(n.nc, jetstream.WithPublishAsyncMaxPending(maxAsyncPending)); err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	n.logStart(c, dataDir, secret)
	return n, nil
}

// logStart writes the one line that says how this node runs: the config
// in effect, with the path of the secret file (never the secret), whether
// routes and nats_listen's clients must give it (auth: false is allowed on
// loopback only, where any local user may still join or connect) and URLs
// without their userinfo.
func (n *Node) logStart(c *config.Cluster, dataDir string, secret string) {
	fields := []zap.Field{zap.String("mode", n.mode), zap.String("node", n.name), zap.Int("replicas", n.replicas),
		zap.Duration("ack_wait", c.AckWait), zap.Duration("lease_ttl", c.LeaseTTL)}
	if n.srv != nil {
		clusterListen := ""
		if len(c.Routes) > 0 {
			clusterListen = c.ClusterListen
		}
		fields = append(fields, zap.String("nats_listen", c.NATSListen), zap.String("cluster_listen", clusterListen),
			zap.Strings("routes", config.RedactURLs(c.Routes)), zap.String("secret_file", c.SecretFile),
			zap.Bool("auth", secret != ""), zap.Bool("tls", c.TLS()), zap.String("store_dir", c.StorePath(dataDir)),
			zap.Bool("sync_always", c.SyncAlways), zap.Int32("max_payload", c.MaxPayload))
	} else {
		fields = append(fields, zap.Strings("nats_urls", config.RedactURLs(c.NATSURLs)))
	}
	n.log.Info("cluster started", fields...)
}

// JS is the node's JetStream handle.
func (n *Node) JS() jetstream.JetStream { return n.js }

// Conn is the node's NATS connection.
func (n *Node) Conn() *nats.Conn { return n.nc }

// Name is the node's name ([gomta.cluster] node).
func (n *Node) Name() string { return n.name }

// Replicas is the replica count the backends create their streams with.
func (n *Node) Replicas() int { return n.replicas }

// Embedded reports whether the node runs its NATS server in-process.
func (n *Node) Embedded() bool { return n.srv != nil }

// Server is the embedded NATS server (nil for an external cluster), for
// its monitoring (Jsz: what this node itself stores).
func (n *Node) Server() *server.Server { return n.srv }

// MaxPayload is the largest message the connected server takes, 0 before
// the first connection (external): bodies above it go to an object store.
func (n *Node) MaxPayload() int64 { return n.nc.MaxPayload() }

// WaitReady waits until JetStream answers through this node: in a cluster,
// until a meta leader has been elected (a node started before its peers
// waits for them). It asks again until ctx ends, and then returns the last
// answer's error.
func (n *Node) WaitReady(ctx context.Context) error {
	logged := false
	for {
		tctx, cancel := context.WithTimeout(ctx, tryTimeout)
		_, err := n.js.AccountInfo(tctx)
		cancel()
		if err == nil {
			if logged {
				n.log.Info("cluster ready", zap.String("node", n.name))
			}
			return nil
		}
		if !logged {
			n.log.Info("cluster waiting for jetstream", zap.String("node", n.name), zap.Error(err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: jetstream not ready: %w", errors.Join(ctx.Err(), err))
		case <-time.After(retryPause):
		}
	}
}

// Actor is the node's block of mtad's run group: it runs until interrupted
// or until the connection is closed for good (an error: the node can no
// longer store mail). It does not close the node: the hosts drain their
// sessions through it after the group's interrupt, so main calls Close
// once the group has returned.
func (n *Node) Actor() (execute func() error, interrupt func(error)) {
	stop := make(chan struct{})
	var once sync.Once
	return func() error {
			select {
			case <-n.closed:
				return errors.New("cluster: nats connection closed")
			case <-stop:
				return nil
			}
		}, func(error) {
			once.Do(func() { close(stop) })
		}
}

// Close drains the connection (replies in flight are awaited, at most
// drainTimeout), then shuts the embedded server down and waits until it
// has stopped. It may be called more than once.
func (n *Node) Close() {
	n.once.Do(func() {
		if err := n.nc.Drain(); err != nil {
			n.nc.Close()
		}
		select {
		case <-n.closed:
		case <-time.After(drainTimeout + time.Second):
			n.nc.Close()
		}
		n.shutdownServer()
		n.log.Info("cluster stopped", zap.String("node", n.name))
	})
}

func (n *Node) shutdownServer() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}
