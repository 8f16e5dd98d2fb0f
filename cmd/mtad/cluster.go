package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"go.uber.org/zap"

	"gomta/mta/cluster"
	"gomta/mta/config"
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
