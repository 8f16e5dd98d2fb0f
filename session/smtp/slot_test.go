package smtp

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/mta/mtatest"
	"gomta/session/limit"
)

// shutdownOnAccept is a listener whose Accept, once it has a connection,
// starts srv's Shutdown and returns the connection only when the server is
// closing: the accept loop then holds a connection it can no longer track.
type shutdownOnAccept struct {
	net.Listener
	srv      *Server
	shutdown chan error
}

func (l *shutdownOnAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.shutdown <- l.srv.Shutdown(ctx)
	}()
	for range 1000 { // bounded: Shutdown sets closing at once
		if l.srv.shell.Closing() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, nil
}

// TestSlotReleasedWhenTrackingFails: a connection accepted as Shutdown begins
// takes a limiter slot, then cannot be tracked; the slot must come back, or a
// server sharing the limiter (the host's POP3, a restarted listener) is short
// of it for ever.
func TestSlotReleasedWhenTrackingFails(t *testing.T) {
	lim := limit.New(limit.Config{MaxConns: 1})
	srv := NewServer(Config{Hostname: testHost, Limiter: lim, Logger: zap.NewNop()}, &fakeBackend{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &shutdownOnAccept{Listener: inner, srv: srv, shutdown: make(chan error, 1)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-l.shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	mtatest.Eventually(t, "the untracked connection's limiter slot released", func() bool {
		release, err := lim.Accept(remote)
		if err != nil {
			return false
		}
		release()
		return true
	})
}
