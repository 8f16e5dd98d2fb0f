package cluster_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/cluster"
	"gomta/mta/cluster/natstest"
	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// TestExternal: a node of an external NATS server stores and reads through
// it; one started before its server waits (WaitReady fails at its
// deadline) and is ready once the server is up.
func TestExternal(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, 0)
	core, logs := observer.New(zapcore.InfoLevel)
	n := cluster.StartNode(t, &config.Cluster{Node: "ext", NATSURLs: []string{ns.S.ClientURL()}, Replicas: 1}, zap.New(core))
	if err := n.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n.Embedded() || n.MaxPayload() != 1<<20 {
		t.Errorf("embedded %t, max payload %d (want the server's 1 MiB)", n.Embedded(), n.MaxPayload())
	}
	if l := logs.FilterMessage("cluster started").All(); len(l) != 1 || l[0].ContextMap()["mode"] != "external" {
		t.Errorf("start log = %v", l)
	}
	if _, err := n.JS().CreateStream(cluster.CtxFor(t, 30*time.Second), jetstream.StreamConfig{Name: "X", Subjects: []string{"x.>"}}); err != nil {
		t.Fatal(err)
	}
	seq := cluster.PublishRead(t, n, "X", "x.1", "external")
	if m, err := ns.JS.Stream(cluster.CtxFor(t, 30*time.Second), "X"); err != nil {
		t.Fatal(err)
	} else if got, err := m.GetMsg(cluster.CtxFor(t, 30*time.Second), seq); err != nil || string(got.Data) != "external" {
		t.Fatalf("read through the server's own client: %v", err)
	}

	port := mtatest.FreePorts(t, 1)[0]
	early := cluster.StartNode(t, &config.Cluster{Node: "early", NATSURLs: []string{"nats://" + mtatest.Addr(port)}, Replicas: 1}, zap.NewNop())
	if err := early.WaitReady(cluster.CtxFor(t, time.Second)); err == nil {
		t.Fatal("WaitReady succeeded with no server")
	}
	s, err := server.NewServer(&server.Options{ServerName: "late", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if err := early.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatalf("WaitReady after the server came up: %v", err)
	}
}
