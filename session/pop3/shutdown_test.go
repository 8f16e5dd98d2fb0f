package pop3_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"gomta/session/pop3"
)

func shutdownAsync(ts *testServer, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	return done
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(ioWait):
		t.Fatal("Shutdown did not return")
		return nil
	}
}

// waitListenerClosed waits until the server's listener refuses connections,
// which Shutdown does first.
func waitListenerClosed(t *testing.T, addr string) {
	t.Helper()
	for range 2000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("listener still accepting after Shutdown")
}

func TestShutdownIdleSessions(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	auth := dial(t, ts.addr)
	trans := dial(t, ts.addr)
	trans.loginAlice()
	trans.cmd("DELE 1", "+OK message 1 deleted")

	done := shutdownAsync(ts, context.Background())
	auth.expect("-ERR [SYS/TEMP] server shutting down")
	auth.expectEOF()
	trans.expect("-ERR [SYS/TEMP] server shutting down")
	trans.expectEOF()
	if err := wait(t, done); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ts.waitServe(t)
	if be.Locked("alice") {
		t.Error("maildrop still locked after Shutdown returned")
	}
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("Shutdown removed messages: %d left, want 2", len(got))
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestShutdownFinishesCommandInProgress(t *testing.T) {
	t.Parallel()
	be := newBackend()
	entered, release := make(chan struct{}), make(chan struct{})
	be.OpenHook = func(ctx context.Context, user string, i int) error {
		close(entered)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.write("RETR 2\r\n")
	<-entered
	done := shutdownAsync(ts, context.Background())
	waitListenerClosed(t, ts.addr)
	close(release)
	c.expect(append(append([]string{"+OK " + itoa(len(msg2)) + " octets"}, stuffed(msg2)...), ".",
		"-ERR [SYS/TEMP] server shutting down")...)
	c.expectEOF()
	if err := wait(t, done); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ts.waitServe(t)
}

func TestShutdownCutsAtDeadline(t *testing.T) {
	t.Parallel()
	be := newBackend()
	entered := make(chan struct{})
	be.OpenHook = func(ctx context.Context, user string, i int) error {
		close(entered)
		<-ctx.Done() // stuck until the server cuts
		return ctx.Err()
	}
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.write("RETR 2\r\n")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	done := shutdownAsync(ts, ctx)
	waitListenerClosed(t, ts.addr)
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	c.expectEOF()
	ts.waitServe(t)
	waitReleased(t, be, "alice")
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("cut session removed messages: %d left, want 2", len(got))
	}
	// A second Shutdown waits for the cut session to be gone.
	ctx2, cancel2 := context.WithTimeout(context.Background(), ioWait)
	defer cancel2()
	if err := ts.srv.Shutdown(ctx2); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	t.Parallel()
	srv := pop3.NewServer(pop3.Config{Hostname: host}, newBackend())
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); err != nil {
		t.Fatalf("Serve after Shutdown = %v, want nil", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener open after Serve returned")
	}
}
