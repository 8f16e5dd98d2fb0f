package natstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/mta/cluster"
	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// Cluster is n embedded gomta cluster nodes (mta/cluster) on loopback
// ports, each routed to all the others, one JetStream cluster. A node can
// be stopped, started again on its ports and store, or have its store
// wiped, as a test of failover needs.
type Cluster struct {
	t       testing.TB
	Configs []*config.Cluster // node i's config: its ports and store
	Nodes   []*cluster.Node   // node i; a stopped node stays until Restart
}

// StartCluster starts n nodes (replicas min(3, n); syncAlways as
// sync_always) and waits until JetStream answers through each. They are
// closed when the test ends. They share one secret (SecretFile, as a
// production cluster beyond one machine must) and open no client port,
// as by default.
func StartCluster(t testing.TB, n int, syncAlways bool) *Cluster {
	t.Helper()
	ports := mtatest.FreePorts(t, n)
	secret := WriteSecret(t, "natstest-cluster-secret-"+fmt.Sprint(ports[0]))
	c := &Cluster{t: t, Configs: make([]*config.Cluster, n), Nodes: make([]*cluster.Node, n)}
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, "nats-route://"+mtatest.Addr(ports[j]))
			}
		}
		c.Configs[i] = &config.Cluster{Node: fmt.Sprintf("n%d", i+1), Embedded: true,
			ClusterListen: mtatest.Addr(ports[i]), Routes: routes, SecretFile: secret,
			StoreDir: t.TempDir(), Replicas: min(3, n), SyncAlways: syncAlways, MaxPayload: config.DefaultMaxPayload}
	}
	for i := range n {
		c.Restart(i)
	}
	for i := range n {
		c.WaitReady(i)
	}
	return c
}

// Stop closes node i, as a node that dies (its store is kept).
func (c *Cluster) Stop(i int) { c.Nodes[i].Close() }

// Restart starts node i on its ports and store; call WaitReady before
// relying on JetStream through it.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := cluster.Start(ctx, c.Configs[i], "", zap.NewNop())
	if err != nil {
		c.t.Fatalf("natstest: node %d: %v", i+1, err)
	}
	c.t.Cleanup(n.Close)
	c.Nodes[i] = n
}

// WaitReady waits until JetStream answers through node i (a meta leader
// exists), at most two minutes.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Nodes[i].WaitReady(ctx); err != nil {
		c.t.Fatalf("natstest: node %d: %v", i+1, err)
	}
}

// WipeStore deletes stopped node i's JetStream store, as a node whose
// disk was replaced.
func (c *Cluster) WipeStore(i int) {
	c.t.Helper()
	if err := os.RemoveAll(c.Configs[i].StoreDir); err != nil {
		c.t.Fatal(err)
	}
}

// WriteSecret writes secret to a file of mode 0600 in a temporary
// directory of t, as [gomta.cluster] secret_file wants it, and returns its
// path.
func WriteSecret(t testing.TB, secret string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
