package pop3test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/session/pop3"
)

// StopWait bounds the Shutdown a started server gets at the end of the test.
const StopWait = 10 * time.Second

// Start runs a real pop3.Server over be on 127.0.0.1:0 and returns its
// address; the server is shut down at the end of the test, which fails if
// Shutdown or Serve reports an error. An empty cfg.Hostname becomes
// "pop.test"; a nil cfg.Logger logs to the test (zaptest).
func Start(t testing.TB, cfg pop3.Config, be pop3.Backend) string {
	t.Helper()
	return start(t, cfg, be, false)
}

// StartTLS is Start with implicit TLS (ServeTLS): cfg.TLSConfig must be set.
func StartTLS(t testing.TB, cfg pop3.Config, be pop3.Backend) string {
	t.Helper()
	return start(t, cfg, be, true)
}

func start(t testing.TB, cfg pop3.Config, be pop3.Backend, implicit bool) string {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "pop.test"
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pop3.NewServer(cfg, be)
	served := make(chan error, 1)
	go func() {
		if implicit {
			served <- srv.ServeTLS(l)
		} else {
			served <- srv.Serve(l)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StopWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("pop3 Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("pop3 Serve: %v", err)
		}
	})
	return l.Addr().String()
}
