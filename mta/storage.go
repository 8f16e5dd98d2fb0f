package mta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"gomta/delivery/mailbox"
	"gomta/delivery/mailbox/jsbox"
	"gomta/mta/cluster"
	"gomta/mta/config"
	"gomta/queue"
	"gomta/queue/jsq"
	"gomta/session/logvocab"
	"gomta/session/metrics"
)

// provisionTimeout bounds the creation of a host's streams and buckets on
// a cluster at start (every node does it; it is idempotent), provisionTry
// one try of it, provisionPause the wait between two tries.
const (
	provisionTimeout = 2 * time.Minute
	provisionTry     = 5 * time.Second
	provisionPause   = 500 * time.Millisecond
)

// openStorage opens the host's queue and mailboxes: the local spool and
// Maildirs under dataDir, or, when node is set, the replicated ones on the
// cluster's JetStream (local files then only stage bodies, under tmp/).
// base is the process's logger (the queue adds the host field itself).
func (h *Host) openStorage(cfg *config.Config, s *config.Server, hc *hostConfig, node *cluster.Node, base *zap.Logger, hm *metrics.Host) error {
	retryBase, retryMax := cfg.RetryBackoff()
	mlog := h.log.With(zap.String(logvocab.Proto, logvocab.Mailbox))
	if node == nil {
		q, err := queue.Open(queue.Options{
			Dir: filepath.Join(h.dataDir, "spool"), Host: s.Name, Workers: cfg.QueueWorkers,
			MaxMessages: cfg.MaxQueue, Retry: cfg.RetryWaits(), RetryBase: retryBase, RetryMax: retryMax,
			MaxLifetime: time.Duration(cfg.MaxQueueLifetime), DelayWarning: time.Duration(cfg.DelayWarning),
			Logger: base.With(zap.String(logvocab.Proto, logvocab.Queue)), Metrics: hm.Queue,
		})
		if err != nil {
			return err
		}
		h.Queue = q.AsSpool()
		mb, err := mailbox.New(mailbox.Options{Root: filepath.Join(h.dataDir, "mail"), Users: hc.users(), Logger: mlog})
		if err != nil {
			return err
		}
		h.Mailboxes = mb.AsBackend()
		return nil
	}
	tmp := filepath.Join(h.dataDir, "tmp")
	if err := mkdirClean(tmp); err != nil {
		return err
	}
	var cl config.Cluster
	if cfg.Cluster != nil {
		cl = *cfg.Cluster
	}
	qo := jsq.Options{
		JS: node.JS(), Host: s.Name, Node: node.Name(), Replicas: node.Replicas(), Workers: cfg.QueueWorkers,
		MaxMessages: cfg.MaxQueue, Retry: cfg.RetryWaits(), RetryBase: retryBase, RetryMax: retryMax,
		MaxLifetime: time.Duration(cfg.MaxQueueLifetime), DelayWarning: time.Duration(cfg.DelayWarning),
		AckWait: cl.AckWait, TmpDir: tmp, Logger: base, Metrics: hm.Queue,
	}
	mo := jsbox.Options{JS: node.JS(), Host: s.Name, Node: node.Name(), Replicas: node.Replicas(),
		Users: hc.users(), LeaseTTL: cl.LeaseTTL, Logger: mlog.With(zap.String("node", node.Name()))}
	return provision(h.log, func(ctx context.Context) error {
		// The queue's and the mailboxes' streams are created side by side:
		// each new replicated stream waits for its own leader election.
		var q *jsq.Queue
		var qerr error
		done := make(chan struct{})
		go func() { defer close(done); q, qerr = jsq.Open(ctx, qo) }()
		mb, merr := jsbox.New(ctx, mo)
		<-done
		if qerr != nil {
			return fmt.Errorf("queue on the cluster: %w", qerr)
		}
		if merr != nil {
			return fmt.Errorf("mailboxes on the cluster: %w", merr)
		}
		h.Queue, h.Mailboxes = q, mb
		return nil
	})
}

// provision runs open (creating or updating streams, buckets and the
// consumer: idempotent) until it succeeds, each try bounded by
// provisionTry, for provisionTimeout at most. When every node of a new
// cluster creates the same stream at once, the requests that lose the race
// may never be answered although the stream is created: that try times
// out, short, and the next one finds the stream and updates it.
func provision(log *zap.Logger, open func(ctx context.Context) error) error {
	deadline := time.Now().Add(provisionTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), provisionTry)
		err := open(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) || errors.Is(err, nats.ErrConnectionClosed) {
			return err // closed: mtad is stopping
		}
		log.Warn("cluster provisioning retried", zap.Error(err))
		time.Sleep(provisionPause)
	}
}

// mkdirClean makes dir empty: what is left there is a body a stopped
// process was staging, already in the cluster or never acknowledged.
func mkdirClean(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}
