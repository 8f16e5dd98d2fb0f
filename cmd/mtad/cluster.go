package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"go.uber.org/zap"

	"gomta/mta"
	"gomta/mta/cluster"
	"gomta/mta/config"
	"gomta/session/metrics"
)

// startCluster starts this process's node of the cluster when the config
// has [gomta.cluster] (nil without), and waits until JetStream answers
// through it, before any listener opens: a node started before its peers
// waits for them. SIGINT or SIGTERM during that wait stops mtad (an error
// wrapping errSignal); a SIGHUP is ignored, as there is nothing running to
// reload yet.
func startCluster(cfg *config.Config, sigc <-chan os.Signal, log *zap.Logger) (*cluster.Node, error) {
	if cfg.Cluster == nil {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node, err := cluster.Start(ctx, cfg.Cluster, cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() { ready <- node.WaitReady(ctx) }()
	for {
		select {
		case err := <-ready:
			if err != nil {
				node.Close()
				return nil, err
			}
			return node, nil
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				continue
			}
			cancel()
			<-ready
			node.Close()
			return nil, fmt.Errorf("received %s while waiting for the cluster: %w", sig, errSignal)
		}
	}
}

// newClusterHosts is newHosts for a cluster node: provisioning the hosts'
// streams on a cluster that has just formed (or lost its quorum) can take
// minutes, so SIGINT or SIGTERM meanwhile closes the node, which ends the
// provisioning at once, and stops mtad (an error wrapping errSignal).
func newClusterHosts(cfg *config.Config, servers []*config.Server, certs *mta.TLS, log *zap.Logger, m *metrics.Metrics,
	node *cluster.Node, sigc <-chan os.Signal) ([]*mta.Host, error) {
	type built struct {
		hosts []*mta.Host
		err   error
	}
	done := make(chan built, 1)
	go func() {
		hosts, err := newHosts(cfg, servers, certs, log, m, node)
		done <- built{hosts, err}
	}()
	for {
		select {
		case b := <-done:
			return b.hosts, b.err
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				continue
			}
			node.Close()
			if b := <-done; b.err == nil {
				for _, h := range b.hosts {
					h.Close()
				}
			}
			return nil, fmt.Errorf("received %s while provisioning the cluster: %w", sig, errSignal)
		}
	}
}
