package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testHost = "mx.test.example"

// fakeBackend is an in-memory Backend. Hooks, when set, decide the answers.
type fakeBackend struct {
	mailHook   func(c *Peer, from string) error
	rcptHook   func(rcpt string) error
	newHook    func() error
	commitHook func(ctx context.Context, m *fakeMessage) error
	keep       int // body octets kept per message; 0 = 1 MiB

	mu        sync.Mutex
	seq       int
	committed []*fakeMessage
	aborted   []*fakeMessage
	conns     []Peer
}

// fakeMessage is an in-memory MessageWriter. It keeps the first octets of the
// body, a digest of all of it and the largest write it was given.
type fakeMessage struct {
	be       *fakeBackend
	id       string
	body     bytes.Buffer
	sum      hash.Hash
	n        int64
	writes   int
	maxWrite int
	from     string
	rcpts    []string
}

func (b *fakeBackend) Mail(_ context.Context, c *Peer, from string) error {
	b.mu.Lock()
	b.conns = append(b.conns, *c)
	b.mu.Unlock()
	if b.mailHook != nil {
		return b.mailHook(c, from)
	}
	return nil
}

func (b *fakeBackend) Rcpt(_ context.Context, _ *Peer, _, rcpt string) error {
	if b.rcptHook != nil {
		return b.rcptHook(rcpt)
	}
	return nil
}

func (b *fakeBackend) NewMessage(context.Context, *Peer) (MessageWriter, error) {
	if b.newHook != nil {
		if err := b.newHook(); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return &fakeMessage{be: b, id: fmt.Sprintf("MSG%04d", b.seq), sum: sha256.New()}, nil
}

func (m *fakeMessage) ID() string { return m.id }

func (m *fakeMessage) Write(p []byte) (int, error) {
	keep := m.be.keep
	if keep == 0 {
		keep = 1 << 20
	}
	if room := keep - m.body.Len(); room > 0 {
		m.body.Write(p[:min(room, len(p))])
	}
	m.sum.Write(p)
	m.n += int64(len(p))
	m.writes++
	m.maxWrite = max(m.maxWrite, len(p))
	return len(p), nil
}

func (m *fakeMessage) Commit(ctx context.Context, from string, rcpts []string) error {
	m.from, m.rcpts = from, append([]string(nil), rcpts...)
	if m.be.commitHook != nil {
		if err := m.be.commitHook(ctx, m); err != nil {
			return err
		}
	}
	m.be.mu.Lock()
	defer m.be.mu.Unlock()
	m.be.committed = append(m.be.committed, m)
	return nil
}

func (m *fakeMessage) Abort() {
	m.be.mu.Lock()
	defer m.be.mu.Unlock()
	m.be.aborted = append(m.be.aborted, m)
}

func (b *fakeBackend) counts() (committed, aborted int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.committed), len(b.aborted)
}

func (b *fakeBackend) message(t testing.TB, i int) *fakeMessage {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if i >= len(b.committed) {
		t.Fatalf("message %d not committed (%d committed)", i, len(b.committed))
	}
	return b.committed[i]
}

// startServer runs a Server on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, cfg Config, be Backend) (*Server, string) {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = testHost
	}
	if cfg.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			cfg.Logger = zaptest.NewLogger(tt)
		} else {
			cfg.Logger = zap.NewNop()
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, be)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// client is a raw line client for exact reply checks.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

// dialReady dials and checks the greeting and the EHLO reply.
func dialReady(t testing.TB, addr string) *client {
	t.Helper()
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.send("EHLO client.example")
	cl.expectMulti("250-"+testHost+" greets client.example", "250-PIPELINING", "250-8BITMIME")
	if line, err := cl.readLine(); err != nil || !strings.HasPrefix(line, "250-SIZE ") {
		t.Fatalf("SIZE line %q %v", line, err)
	}
	cl.expectMulti("250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-DSN", "250-SMTPUTF8", "250 HELP")
	return cl
}

func (cl *client) send(lines ...string) {
	cl.t.Helper()
	cl.write(strings.Join(lines, "\r\n") + "\r\n")
}

func (cl *client) write(s string) {
	cl.t.Helper()
	if _, err := cl.c.Write([]byte(s)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

func (cl *client) readLine() (string, error) {
	line, err := cl.br.ReadString('\n')
	if err != nil {
		return line, err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return line, errors.New("reply line without CRLF: " + line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// expect reads one reply line and compares it exactly.
func (cl *client) expect(want string) {
	cl.t.Helper()
	got, err := cl.readLine()
	if err != nil {
		cl.t.Fatalf("want %q, read error %v (got %q)", want, err, got)
	}
	if got != want {
		cl.t.Fatalf("got %q, want %q", got, want)
	}
}

func (cl *client) expectMulti(want ...string) {
	cl.t.Helper()
	for _, w := range want {
		cl.expect(w)
	}
}

// expectClosed checks that the server closed the connection with nothing more.
func (cl *client) expectClosed() {
	cl.t.Helper()
	got, err := cl.readLine()
	if err == nil || got != "" {
		cl.t.Fatalf("want connection closed, got %q (err %v)", got, err)
	}
	cl.c.Close() // as a client does, so that the server's lingering read ends
}

// pipeSession runs one session of a fresh server over net.Pipe and returns
// the client end and a channel closed when the session goroutine ended.
func pipeSession(cfg Config, be Backend, wrap func(net.Conn) net.Conn) (net.Conn, *Server, <-chan struct{}) {
	if cfg.Hostname == "" {
		cfg.Hostname = testHost
	}
	srv := NewServer(cfg, be)
	cc, sc := net.Pipe()
	if wrap != nil {
		sc = wrap(sc)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.shell.ServeConn(sc, srv.sessionFor(false))
	}()
	return cc, srv, done
}
