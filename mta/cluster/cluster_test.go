package cluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// ctxFor is a context for one step of a test, ended with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// embedded is the config of a lone embedded node on a free port.
func embedded(t testing.TB, name string) *config.Cluster {
	t.Helper()
	return &config.Cluster{Node: name, Embedded: true, NATSListen: mtatest.Addr(mtatest.FreePorts(t, 1)[0]),
		StoreDir: t.TempDir(), Replicas: 1, MaxPayload: config.DefaultMaxPayload}
}

func startNode(t *testing.T, c *config.Cluster, log *zap.Logger) *Node {
	t.Helper()
	n, err := Start(ctxFor(t, time.Minute), c, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// publishRead publishes data on subject through n and reads it back by its
// sequence through n.
func publishRead(t *testing.T, n *Node, stream, subject, data string) uint64 {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	ack, err := n.JS().Publish(ctx, subject, []byte(data))
	if err != nil {
		t.Fatalf("publish through %s: %v", n.Name(), err)
	}
	readSeq(t, n, stream, ack.Sequence, data)
	return ack.Sequence
}

func readSeq(t *testing.T, n *Node, stream string, seq uint64, want string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	st, err := n.JS().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s through %s: %v", stream, n.Name(), err)
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil || string(m.Data) != want {
		t.Fatalf("message %d through %s: %v; want %q", seq, n.Name(), err, want)
	}
}

// TestLoneNodeStartsStoresAndFreesItsPort: a lone embedded node serves
// JetStream, logs how it runs, refuses a port in use at once, and after
// Close its port is free and its store kept: a node started again on the
// same port and store has the message.
func TestLoneNodeStartsStoresAndFreesItsPort(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	c := embedded(t, "lone")
	n, err := Start(ctxFor(t, time.Minute), c, "", zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitReady(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !n.Embedded() || n.Name() != "lone" || n.Replicas() != 1 || n.MaxPayload() != config.DefaultMaxPayload {
		t.Errorf("node: embedded %t name %q replicas %d max payload %d", n.Embedded(), n.Name(), n.Replicas(), n.MaxPayload())
	}
	started := logs.FilterMessage("cluster started").All()
	if len(started) != 1 || started[0].ContextMap()["mode"] != "embedded" || started[0].ContextMap()["replicas"] != int64(1) ||
		started[0].ContextMap()["nats_listen"] != c.NATSListen || started[0].ContextMap()["sync_always"] != false {
		t.Errorf("start log = %v", started)
	}
	if _, err := n.JS().CreateStream(ctxFor(t, 30*time.Second), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	seq := publishRead(t, n, "T", "t.a", "kept")

	// The same port while it is taken: an error, not a hang to the deadline.
	busy := *c
	busy.Node, busy.StoreDir = "busy", t.TempDir()
	if b, err := Start(ctxFor(t, time.Minute), &busy, "", zap.NewNop()); err == nil {
		b.Close()
		t.Fatal("a second node on the same port started")
	}

	n.Close()
	n.Close() // a second Close is harmless
	if l, err := net.Listen("tcp", c.NATSListen); err != nil {
		t.Fatalf("port still taken after Close: %v", err)
	} else {
		l.Close()
	}
	again := startNode(t, c, zap.NewNop())
	if err := again.WaitReady(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	readSeq(t, again, "T", seq, "kept")
}

// TestStoreDirDefault: without store_dir the store is "nats" in the data
// directory.
func TestStoreDirDefault(t *testing.T) {
	t.Parallel()
	c := embedded(t, "def")
	c.StoreDir = ""
	data := t.TempDir()
	n, err := Start(ctxFor(t, time.Minute), c, data, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if fi, err := os.Stat(filepath.Join(data, "nats", "jetstream")); err != nil || !fi.IsDir() {
		t.Errorf("no JetStream store in %s/nats: %v", data, err)
	}
}

// TestActorEndsWithTheConnection: the run group's block returns nil when
// interrupted, and an error when the connection is closed under it.
func TestActorEndsWithTheConnection(t *testing.T) {
	t.Parallel()
	n := startNode(t, embedded(t, "actor"), zap.NewNop())
	exec, interrupt := n.Actor()
	done := make(chan error, 1)
	go func() { done <- exec() }()
	interrupt(nil)
	if err := <-done; err != nil {
		t.Errorf("interrupted actor: %v", err)
	}
	exec, _ = n.Actor()
	go func() { done <- exec() }()
	n.Close()
	if err := <-done; err == nil {
		t.Error("actor returned nil after the connection closed")
	}
}
