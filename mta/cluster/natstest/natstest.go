// Package natstest owns the embedded NATS JetStream servers that tests of
// the cluster backends run against: one node on a loopback port with its
// store in a test's temporary directory (Start), or a cluster of gomta
// nodes routed to each other (StartCluster), stopped when the test ends.
// It is for tests only; mta/cluster's own in-package tests cannot import
// it (it imports mta/cluster).
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is one embedded JetStream node and a client connection to it.
type Server struct {
	S  *server.Server
	NC *nats.Conn
	JS jetstream.JetStream
}

// Start runs a one-node JetStream server on 127.0.0.1 (a free port) with its
// store under t.TempDir(), connects to it, and stops both when t ends.
// maxPayload 0 keeps the server's default (1 MiB).
func Start(t testing.TB, maxPayload int32) *Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: maxPayload,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("natstest: server not ready after 10 s")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Name("natstest"))
	if err != nil {
		s.Shutdown()
		t.Fatalf("natstest: connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		s.Shutdown()
		t.Fatalf("natstest: jetstream: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{S: s, NC: nc, JS: js}
}
