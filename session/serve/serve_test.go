package serve

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/limit"
	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
)

// fakeSession runs until it is woken or cut, telling started when it runs.
type fakeSession struct {
	nc      net.Conn
	refused error
	started chan *fakeSession
	woken   chan struct{}
	cut     chan struct{}
}

func (f *fakeSession) Run() {
	defer f.nc.Close()
	f.started <- f
	if f.refused != nil {
		return
	}
	select {
	case <-f.woken:
	case <-f.cut:
	}
}

func (f *fakeSession) Wake() { close(f.woken) }
func (f *fakeSession) Cut()  { close(f.cut) }

// serveFake starts sh on a loopback listener with fake sessions.
func serveFake(t *testing.T, sh *Shell) (addr string, started chan *fakeSession, served chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, served = make(chan *fakeSession, 4), make(chan error, 1)
	go func() {
		served <- sh.Serve(l, func(nc net.Conn, refused error) Session {
			return &fakeSession{nc: nc, refused: refused, started: started,
				woken: make(chan struct{}), cut: make(chan struct{})}
		})
	}()
	return l.Addr().String(), started, served
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestShutdownWakesAndDrains(t *testing.T) {
	t.Parallel()
	sh := New(zap.NewNop(), nil, nil)
	addr, started, served := serveFake(t, sh)
	dial(t, addr)
	<-started
	if err := sh.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after Shutdown", err)
	}
	if sh.Context().Err() == nil {
		t.Error("backend context still live after Shutdown drained")
	}
}

// blockingSession ignores Wake: only Cut ends it.
type blockingSession struct {
	nc      net.Conn
	started chan struct{}
	cut     chan struct{}
}

func (b *blockingSession) Run()  { defer b.nc.Close(); close(b.started); <-b.cut }
func (b *blockingSession) Wake() {}
func (b *blockingSession) Cut()  { close(b.cut) }

func TestShutdownCutsSessionInCommand(t *testing.T) {
	t.Parallel()
	sh := New(zap.NewNop(), nil, nil)
	cc, sc := net.Pipe()
	defer cc.Close()
	sess := &blockingSession{nc: sc, started: make(chan struct{}), cut: make(chan struct{})}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sh.ServeConn(sc, func(net.Conn, error) Session { return sess })
	}()
	<-sess.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sh.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	<-ended
	if sh.Context().Err() == nil {
		t.Error("backend context not cancelled by the cut")
	}
	if err := sh.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestRefusedSessionRunsAndReleases(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{MaxConns: 1})
	sh := New(zap.NewNop(), lim, nil)
	addr, started, _ := serveFake(t, sh)
	dial(t, addr)
	first := <-started
	if first.refused != nil {
		t.Fatalf("first connection refused: %v", first.refused)
	}
	dial(t, addr)
	if second := <-started; !errors.Is(second.refused, limit.ErrTooManyConns) {
		t.Fatalf("second connection: refused = %v, want ErrTooManyConns", second.refused)
	}
	if err := sh.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	release, err := lim.Accept(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if err != nil {
		t.Fatalf("slot not given back after the sessions ended: %v", err)
	}
	release()
}

func TestServeConnAfterShutdown(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{MaxConns: 1})
	sh := New(zap.NewNop(), lim, nil)
	if err := sh.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cc, sc := net.Pipe()
	defer cc.Close()
	sh.ServeConn(sc, func(net.Conn, error) Session {
		return &blockingSession{nc: sc, started: make(chan struct{}), cut: make(chan struct{})}
	})
	cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := cc.Read(make([]byte, 1)); err == nil {
		t.Error("connection left open")
	}
	release, err := lim.Accept(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if err != nil {
		t.Fatalf("slot of the session that never ran not given back: %v", err)
	}
	release()
}

func TestErrorsBudget(t *testing.T) {
	e := Errors{Max: 3}
	for i, want := range []bool{false, false, true} {
		if got := e.Count(); got != want {
			t.Fatalf("Count #%d = %v, want %v", i+1, got, want)
		}
	}
	if e.N() != 3 {
		t.Fatalf("N = %d", e.N())
	}
}

func TestRecoverLogsAndAnswers(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	answered := false
	func() {
		defer Recover(zap.New(core), func() { answered = true })
		panic("boom")
	}()
	if !answered {
		t.Error("last reply not sent")
	}
	entries := logs.FilterMessage("session panic").All()
	if len(entries) != 1 {
		t.Fatalf("%d panic lines", len(entries))
	}
	m := entries[0].ContextMap()
	if m["error"] != "panic: boom" || m["stack"] == nil {
		t.Fatalf("panic line fields: %v", m)
	}
	// No panic: nothing logged, no reply.
	func() { defer Recover(zap.New(core), func() { t.Error("reply without a panic") }) }()
}

// Every session is counted opened when it runs and closed when it ends, a
// refused one too; Shutdown returns once the open gauge is back to 0.
func TestSessionsCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	counts := m.Host("h").SMTP
	sh := New(zap.NewNop(), limit.New(limit.Config{MaxConns: 1}), counts)
	addr, started, _ := serveFake(t, sh)
	dial(t, addr)
	<-started
	dial(t, addr)
	<-started // refused: it ends at once
	f := metricstest.Gather(t, m.Registry())
	if n := f.Get(t, "gomta_sessions_total", "host", "h", "proto", "smtp"); n != 2 {
		t.Errorf("sessions_total = %v, want 2", n)
	}
	if err := sh.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if n := metricstest.Gather(t, m.Registry()).Get(t, "gomta_sessions_open", "host", "h", "proto", "smtp"); n != 0 {
		t.Errorf("sessions_open after Shutdown = %v, want 0", n)
	}
}
