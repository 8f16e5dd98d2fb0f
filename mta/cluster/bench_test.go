package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gomta/mta/cluster"
	"gomta/mta/cluster/natstest"
)

// BenchmarkPublish measures what a durable JetStream write costs through a
// node, the floor under a cluster backend's 250: a 4 KiB message (a
// typical mail) published and acknowledged, on a lone R1 node and on three
// loopback nodes with an R3 stream, with and without sync_always. "serial"
// is one publisher waiting for each ack (the latency of one SMTP session);
// "parallel" is 16 publishers per CPU at once (many sessions: the server
// can batch their writes and their fsyncs).
//
//	go test -run '^$' -bench Publish -benchtime 2000x ./mta/cluster/
func BenchmarkPublish(b *testing.B) {
	body := []byte(strings.Repeat("x", 4096))
	for _, sync := range []bool{false, true} {
		for _, shape := range []string{"lone-R1", "trio-R3"} {
			b.Run(fmt.Sprintf("%s/sync_always=%t", shape, sync), func(b *testing.B) {
				n := benchNode(b, shape, sync)
				b.Run("serial", func(b *testing.B) {
					ctx := cluster.CtxFor(b, 10*time.Minute)
					b.SetBytes(int64(len(body)))
					for b.Loop() {
						if _, err := n.JS().Publish(ctx, "bench.x", body); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
				})
				b.Run("parallel", func(b *testing.B) {
					ctx := cluster.CtxFor(b, 10*time.Minute)
					b.SetBytes(int64(len(body)))
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := n.JS().Publish(ctx, "bench.x", body); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
				})
			})
		}
	}
}

// benchNode starts the nodes of shape and a stream BENCH on them, and
// returns the node to publish through.
func benchNode(b *testing.B, shape string, sync bool) *cluster.Node {
	b.Helper()
	nodes, replicas := 1, 1
	if shape == "trio-R3" {
		nodes, replicas = 3, 3
	}
	n := natstest.StartCluster(b, nodes, sync).Nodes[0]
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := n.JS().CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Replicas: replicas})
		cancel()
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			b.Fatalf("stream BENCH: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
