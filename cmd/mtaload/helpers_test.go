package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"gomta/mta/mtatest"
	"gomta/session/smtp"
)

// lastProcs is the GOMAXPROCS the last run asked for (-procs); the tests'
// process keeps its own.
var lastProcs atomic.Int64

func TestMain(m *testing.M) {
	setProcs = func(n int) { lastProcs.Store(int64(n)) }
	goleak.VerifyTestMain(mtatest.WithMtad(m)) // removes the mtad binary the open-loop test builds
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// sinkBackend accepts every message, refusing recipients that contain
// refuse with 550 5.1.1, and remembers what it committed.
type sinkBackend struct {
	refuse string
	keep   bool // keep bodies (for verify round trips)

	mu      sync.Mutex
	commits int
	rcpts   int
	ids     map[string]int      // Message-ID → commits carrying it
	bodies  map[string][][]byte // recipient → bodies
}

var errNoUser = &smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}

func (b *sinkBackend) Mail(context.Context, *smtp.Peer, string) error { return nil }

func (b *sinkBackend) Rcpt(_ context.Context, _ *smtp.Peer, _, rcpt string) error {
	if b.refuse != "" && strings.Contains(rcpt, b.refuse) {
		return errNoUser
	}
	return nil
}

func (b *sinkBackend) NewMessage(context.Context, *smtp.Peer) (smtp.MessageWriter, error) {
	return &sinkMessage{be: b}, nil
}

type sinkMessage struct {
	be  *sinkBackend
	buf bytes.Buffer
}

func (m *sinkMessage) Write(p []byte) (int, error) { return m.buf.Write(p) }
func (m *sinkMessage) ID() string                  { return "sink" }
func (m *sinkMessage) Abort()                      {}

func (m *sinkMessage) Commit(_ context.Context, _ string, rcpts []string) error {
	b := m.be
	id := headerMessageID(m.buf.Bytes())
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commits++
	b.rcpts += len(rcpts)
	if b.ids == nil {
		b.ids = map[string]int{}
		b.bodies = map[string][][]byte{}
	}
	b.ids[id]++
	if b.keep {
		for _, r := range rcpts {
			b.bodies[r] = append(b.bodies[r], bytes.Clone(m.buf.Bytes()))
		}
	}
	return nil
}

func (b *sinkBackend) counts() (commits, rcpts, distinct int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.commits, b.rcpts, len(b.ids)
}

// startSMTP runs a real gomta SMTP server on 127.0.0.1:0.
func startSMTP(t testing.TB, be smtp.Backend) (addr string, l *countingListener) {
	t.Helper()
	return startSMTPConfig(t, smtp.Config{}, be)
}

// startSMTPConfig is startSMTP with server options (TLS, AUTH).
func startSMTPConfig(t testing.TB, cfg smtp.Config, be smtp.Backend) (addr string, l *countingListener) {
	t.Helper()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = &countingListener{Listener: nl}
	cfg.Hostname = "mx.test"
	if tt, ok := t.(*testing.T); ok {
		cfg.Logger = zaptest.NewLogger(tt)
	}
	srv := smtp.NewServer(cfg, be)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return nl.Addr().String(), l
}

// runJSON runs mtaload with args plus -json -progress 0 and decodes the report into v.
func runJSON(t *testing.T, v any, args ...string) (code int, stderr string) {
	t.Helper()
	args = append(args, "-json")
	if args[0] != "verify" {
		args = append(args, "-progress", "0")
	}
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	if code != exitUsage {
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			t.Fatalf("mtaload %v: exit %d, bad JSON %v:\n%s\nstderr: %s", args, code, err, out.String(), errb.String())
		}
	}
	return code, errb.String()
}

// errCount returns the count of an error group.
func errCount(errs []errReport, key string) int64 {
	for _, e := range errs {
		if e.Key == key {
			return e.Count
		}
	}
	return 0
}
