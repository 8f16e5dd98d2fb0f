package smtp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// waitClosing waits until Shutdown has begun.
func waitClosing(t *testing.T, srv *Server) {
	t.Helper()
	for i := 0; !srv.shell.Closing(); i++ {
		if i > 10000 {
			t.Fatal("Shutdown did not begin")
		}
		time.Sleep(time.Millisecond)
	}
}

func shutdownAsync(srv *Server, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	return done
}

func TestShutdownIdle(t *testing.T) {
	t.Parallel()
	srv, addr := startServer(t, Config{}, &fakeBackend{})
	cl := dialReady(t, addr)
	cl2 := dial(t, addr)
	cl2.expect("220 " + testHost + " ESMTP gomta")
	done := shutdownAsync(srv, 30*time.Second)
	cl.expect("421 4.3.2 " + testHost + " shutting down")
	cl.expectClosed()
	cl2.expect("421 4.3.2 " + testHost + " shutting down")
	cl2.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("listener still accepts after Shutdown")
	}
}

// TestShutdownMidData: a session receiving DATA finishes the message, gets its
// 250, then the 421.
func TestShutdownMidData(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	srv, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("Subject: half\r\n\r\nfirst half\r\n")
	done := shutdownAsync(srv, 30*time.Second)
	waitClosing(t, srv)
	cl.write("second half\r\n.\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0001")
	cl.expect("421 4.3.2 " + testHost + " shutting down")
	cl.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, _ := be.counts(); c != 1 {
		t.Errorf("committed %d", c)
	}
}

// TestShutdownDuringCommit: a session waiting for Commit gets its 250, then 421.
func TestShutdownDuringCommit(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	be := &fakeBackend{commitHook: func(ctx context.Context, _ *fakeMessage) error {
		close(entered)
		<-release
		return ctx.Err() // the backend context is not cancelled by a graceful Shutdown
	}}
	srv, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("hi\r\n.\r\n")
	<-entered
	done := shutdownAsync(srv, 30*time.Second)
	waitClosing(t, srv)
	close(release)
	cl.expect("250 2.0.0 OK queued as MSG0001")
	cl.expect("421 4.3.2 " + testHost + " shutting down")
	cl.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownCut: when the Shutdown context ends first, the connections left
// are cut and the backend context is cancelled.
func TestShutdownCut(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	be := &fakeBackend{commitHook: func(ctx context.Context, _ *fakeMessage) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}
	srv, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("hi\r\n.\r\n")
	<-entered
	if err := <-shutdownAsync(srv, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	cl.expectClosed()
	for i := 0; ; i++ { // the session goroutine ends once Commit returned
		if _, a := be.counts(); a == 1 {
			break
		}
		if i > 10000 {
			t.Fatal("message not aborted after the cut")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServeAfterShutdown: Serve on a server already shut down returns nil.
func TestServeAfterShutdown(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{Hostname: testHost}, &fakeBackend{})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("listener left open")
	}
}
