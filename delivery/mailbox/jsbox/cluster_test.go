package jsbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"gomta/delivery/mailbox"
	"gomta/mta/mtatest"
)

// startCluster runs three embedded JetStream servers on loopback that
// route to each other (one JetStream cluster) and stops them at cleanup.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := mtatest.FreePorts(t, 3)
	var urls []string
	for _, p := range ports {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	routes := server.RoutesFromStr(strings.Join(urls, ","))
	var out []*server.Server
	for i, p := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprint("s", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "jsbox", Host: "127.0.0.1", Port: p},
			Routes:     routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(ioWait) {
			t.Fatalf("server %d not ready", i)
		}
		out = append(out, s)
	}
	return out
}

// clusterNode connects to s and makes a Store with replicas 3 once the
// JetStream cluster has a meta leader.
func clusterNode(t *testing.T, s *server.Server, name string) *Store {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var st *Store
	var last error
	mtatest.Eventually(t, "the JetStream cluster to take the store", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, last = New(ctx, Options{JS: js, Host: testHost, Node: name, Replicas: 3, Users: []string{"alice@mail.test"}, Logger: zaptest.NewLogger(t)})
		return last == nil
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = st.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return st
}

// TestReplicatedMailboxSurvivesANode delivers through one node of a
// three-server JetStream cluster (replicas 3), shuts that server down, and
// reads, locks and deletes through the two others.
func TestReplicatedMailboxSurvivesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("three JetStream servers")
	}
	srv := startCluster(t)
	n := []*Store{clusterNode(t, srv[0], "n0"), clusterNode(t, srv[1], "n1"), clusterNode(t, srv[2], "n2")}
	info, err := n[0].stream.Info(ctxT(t))
	if err != nil || info.Config.Replicas != 3 {
		t.Fatalf("stream info %v, %v: want 3 replicas", err, info)
	}
	deliver(t, n[0], "alice@mail.test", "id-1", body1)
	srv[0].Shutdown() // the node that delivered, and maybe a stream leader
	srv[0].WaitForShutdown()

	var b mailbox.Box
	mtatest.Eventually(t, "the mailbox opens on a surviving node", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		b, err = n[1].Open(ctx, "alice@mail.test")
		return err == nil
	})
	equal(t, "read on n1", contents(t, b), []string{stored("alice@mail.test", body1)})
	if _, err := n[2].Open(ctxT(t), "alice@mail.test"); !errors.Is(err, mailbox.ErrInUse) {
		t.Fatalf("Open on n2 while n1 holds the mailbox: %v, want ErrInUse", err)
	}
	if err := b.Commit(ctxT(t), []int{0}); err != nil {
		t.Fatal(err)
	}
	b = open(t, n[2], "alice@mail.test")
	defer b.Close()
	if l := b.List(); len(l) != 0 {
		t.Fatalf("after DELE on n1, n2 lists %+v", l)
	}
}
