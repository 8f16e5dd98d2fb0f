package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gomta/mta/cluster"
	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
)

// tryPublish publishes through n within d and returns the error: nil only
// for an acknowledged write.
func tryPublish(n *cluster.Node, subject, data string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := n.JS().Publish(ctx, subject, []byte(data))
	return err
}

// TestThreeNodesReplicateAndNeedAQuorum: three embedded nodes form one
// JetStream cluster. An R3 stream made through n1 takes a message through
// n2 that n3 reads; with one node down it still takes messages; with two
// down a publish through the survivor fails (no quorum: never an ack);
// with them back on their stores the publish succeeds and the earlier
// messages are there; a node whose store was deleted rejoins and is
// re-replicated.
func TestThreeNodesReplicateAndNeedAQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("three NATS servers")
	}
	c := natstest.StartCluster(t, 3, false)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
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
	ack, err := n2.JS().Publish(cluster.CtxFor(t, 30*time.Second), "q.1", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	cluster.ReadSeq(t, n3, "Q", ack.Sequence, "first")
	cluster.PublishRead(t, n3, "Q", "q.2", "second")

	// One of three down: the other two are a quorum (a new stream leader
	// is elected if n3 led).
	c.Stop(2)
	mtatest.Eventually(t, "a publish through n1 with n3 down", func() bool {
		return tryPublish(n1, "q.3", "one down", 5*time.Second) == nil
	})
	// Two of three down: the survivor cannot make a write durable.
	c.Stop(1)
	if err := tryPublish(n1, "q.lost", "lost", 3*time.Second); err == nil {
		t.Fatal("publish acknowledged with two of three nodes down")
	}

	c.Restart(1)
	c.Restart(2)
	mtatest.Eventually(t, "a publish through n1 once the quorum is back", func() bool {
		return tryPublish(n1, "q.4", "back", 5*time.Second) == nil
	})
	cluster.ReadSeq(t, n1, "Q", 1, "first")
	cluster.ReadSeq(t, n1, "Q", 2, "second")
	cluster.ReadSeq(t, n1, "Q", 3, "one down")
	info, err := c.Nodes[1].JS().Stream(cluster.CtxFor(t, 30*time.Second), "Q")
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
	c.Stop(2)
	c.WipeStore(2)
	c.Restart(2)
	mtatest.Eventually(t, "n3's own store to hold the stream's messages again", func() bool {
		js, err := c.Nodes[2].Server().Jsz(nil)
		return err == nil && js.Messages == want
	})
}
