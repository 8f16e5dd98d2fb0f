package cluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// trio is three embedded nodes on loopback ports, each routed to the other
// two, with their configs kept so that a node can be started again on its
// ports and store.
type trio struct {
	cfgs  [3]*config.Cluster
	nodes [3]*Node
}

func newTrio(t testing.TB, syncAlways bool) *trio {
	t.Helper()
	ports := mtatest.FreePorts(t, 6)
	var tr trio
	for i := range tr.cfgs {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats-route://"+mtatest.Addr(ports[3+j]))
			}
		}
		tr.cfgs[i] = &config.Cluster{Node: fmt.Sprintf("n%d", i+1), Embedded: true,
			NATSListen: mtatest.Addr(ports[i]), ClusterListen: mtatest.Addr(ports[3+i]), Routes: routes,
			StoreDir: t.TempDir(), Replicas: 3, SyncAlways: syncAlways, MaxPayload: config.DefaultMaxPayload}
	}
	for i := range tr.nodes {
		tr.start(t, i)
	}
	for _, n := range tr.nodes {
		if err := n.WaitReady(ctxFor(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	return &tr
}

// start starts node i (again) from its config.
func (tr *trio) start(t testing.TB, i int) {
	t.Helper()
	n, err := Start(ctxFor(t, time.Minute), tr.cfgs[i], "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	tr.nodes[i] = n
}

// tryPublish publishes through n within d and reports whether it was
// acknowledged.
func tryPublish(n *Node, subject, data string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := n.JS().Publish(ctx, subject, []byte(data))
	return err
}

// TestThreeNodesReplicateAndNeedAQuorum: three embedded nodes form one
// JetStream cluster. An R3 stream made through n1 takes a message through
// n2 that n3 reads; with one node down it still takes messages; with two down a publish through the survivor
// fails (no quorum: never an ack); with them back on their stores the
// publish succeeds and the earlier messages are there; a node whose store
// was deleted rejoins and is re-replicated.
func TestThreeNodesReplicateAndNeedAQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("three NATS servers")
	}
	tr := newTrio(t, false)
	n1, n2, n3 := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	if n1.Replicas() != 3 {
		t.Fatalf("replicas = %d", n1.Replicas())
	}
	// The meta leader places an R3 stream once it knows all three peers.
	mtatest.Eventually(t, "an R3 stream created through n1", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := n1.JS().CreateStream(ctx, jetstream.StreamConfig{Name: "Q", Subjects: []string{"q.>"}, Replicas: 3})
		return err == nil
	})
	ctx := ctxFor(t, 30*time.Second)
	ack, err := n2.JS().Publish(ctx, "q.1", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	readSeq(t, n3, "Q", ack.Sequence, "first")
	publishRead(t, n3, "Q", "q.2", "second")

	// One of three down: the other two are a quorum (a new stream leader
	// is elected if n3 led).
	n3.Close()
	mtatest.Eventually(t, "a publish through n1 with n3 down", func() bool {
		return tryPublish(n1, "q.3", "one down", 5*time.Second) == nil
	})
	// Two of three down: the survivor cannot make a write durable.
	n2.Close()
	if err := tryPublish(n1, "q.3", "lost", 3*time.Second); err == nil {
		t.Fatal("publish acknowledged with two of three nodes down")
	}

	tr.start(t, 1)
	tr.start(t, 2)
	mtatest.Eventually(t, "a publish through n1 once the quorum is back", func() bool {
		return tryPublish(n1, "q.4", "back", 5*time.Second) == nil
	})
	readSeq(t, n1, "Q", 1, "first")
	readSeq(t, n1, "Q", 2, "second")
	readSeq(t, n1, "Q", 3, "one down")
	info, err := tr.nodes[1].JS().Stream(ctxFor(t, 30*time.Second), "Q")
	if err != nil {
		t.Fatal(err)
	}
	// 4, or 5: a publish that timed out without an ack may still be
	// committed once the quorum is back (a backend must treat "no ack" as
	// "unknown", never as "not stored").
	want := info.CachedInfo().State.Msgs
	t.Logf("stream Q holds %d messages after the quorum came back", want)
	if want < 4 {
		t.Fatalf("stream holds %d messages after the quorum came back, want at least 4", want)
	}

	// n3 loses its store: started again empty, it is given the stream back.
	tr.nodes[2].Close()
	if err := os.RemoveAll(tr.cfgs[2].StoreDir); err != nil {
		t.Fatal(err)
	}
	tr.start(t, 2)
	mtatest.Eventually(t, "n3's own store to hold the stream's messages again", func() bool {
		js, err := tr.nodes[2].srv.Jsz(nil)
		return err == nil && js.Messages == want
	})
}
