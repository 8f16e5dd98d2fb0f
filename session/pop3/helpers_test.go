package pop3_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
)

const host = "pop.test"

// Test messages, stored with CRLF. msg1 has lines that need dot-stuffing.
const (
	msg1 = "From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n..two dots\r\n.\r\nbye\r\n"
	msg2 = "Subject: two\r\n\r\nline1\r\nline2\r\nline3\r\n"
)

// ioWait bounds how long a test waits for something that must happen; it
// only turns a hang into a failure, it measures nothing.
const ioWait = 10 * time.Second

func newBackend() *pop3test.Backend {
	be := pop3test.New()
	be.AddUser("alice", "secret")
	be.Add("alice", []byte(msg1)) // uid-0001
	be.Add("alice", []byte(msg2)) // uid-0002
	be.AddUser("bob", "hunter 2") // a password with a space
	return be
}

type testServer struct {
	srv     *pop3.Server
	addr    string
	served  chan error
	stopped bool
}

// start runs a server on 127.0.0.1:0 and shuts it down at cleanup, checking
// that Serve then returns nil.
func start(t *testing.T, be pop3.Backend, cfg pop3.Config) *testServer {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = host
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: pop3.NewServer(cfg, be), addr: l.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- ts.srv.Serve(l) }()
	t.Cleanup(func() { shutdownNow(t, ts) })
	return ts
}

// shutdownNow shuts ts down unless done already and checks Serve returned nil.
func shutdownNow(t *testing.T, ts *testServer) {
	t.Helper()
	if ts.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	ts.waitServe(t)
}

func (ts *testServer) waitServe(t *testing.T) {
	t.Helper()
	ts.stopped = true
	select {
	case err := <-ts.served:
		if err != nil {
			t.Errorf("Serve returned %v, want nil after Shutdown", err)
		}
	case <-time.After(ioWait):
		t.Errorf("Serve did not return after Shutdown")
	}
}

// conn is a raw client that checks exact reply lines.
type conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects and checks the greeting.
func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c := dialRaw(t, addr, "")
	c.expect("+OK " + host + " POP3 server ready")
	return c
}

// dialRaw connects from localIP (any loopback address; "" for the default)
// and reads nothing.
func dialRaw(t *testing.T, addr, localIP string) *conn {
	t.Helper()
	var d net.Dialer
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioWait))
	return &conn{t: t, c: nc, r: bufio.NewReader(nc)}
}

func (c *conn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// cmd sends one command line and expects exactly the lines want.
func (c *conn) cmd(line string, want ...string) {
	c.t.Helper()
	c.write(line + "\r\n")
	c.expect(want...)
}

// expect reads len(want) lines, each of which must end in CRLF.
func (c *conn) expect(want ...string) {
	c.t.Helper()
	for i, w := range want {
		got, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("line %d: want %q, read error %v (got %q)", i, w, err, got)
		}
		if !strings.HasSuffix(got, "\r\n") {
			c.t.Fatalf("line %d: %q does not end in CRLF", i, got)
		}
		if got = strings.TrimSuffix(got, "\r\n"); got != w {
			c.t.Fatalf("line %d: got %q, want %q", i, got, w)
		}
	}
}

// expectEOF checks that the server closed the connection with nothing more
// to say.
func (c *conn) expectEOF() {
	c.t.Helper()
	rest, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("want EOF, got %v", err)
	}
	if len(rest) > 0 {
		c.t.Fatalf("want EOF, got more: %q", rest)
	}
}

func (c *conn) login(user, pass string, n int, size int) {
	c.t.Helper()
	c.cmd("USER "+user, "+OK send PASS")
	c.cmd("PASS "+pass, "+OK maildrop has "+strconv.Itoa(n)+" messages ("+strconv.Itoa(size)+" octets)")
}

// loginAlice logs in to the standard maildrop of newBackend.
func (c *conn) loginAlice() {
	c.t.Helper()
	c.login("alice", "secret", 2, len(msg1)+len(msg2))
}

// waitReleased waits until user's maildrop lock is released.
func waitReleased(t *testing.T, be *pop3test.Backend, user string) {
	t.Helper()
	select {
	case <-be.Released(user):
	case <-time.After(ioWait):
		t.Fatalf("maildrop of %s still locked", user)
	}
}

// stuffed splits a CRLF message into lines as a POP3 multi-line reply carries
// them, dot-stuffed.
func stuffed(msg string) []string {
	ls := strings.Split(strings.TrimSuffix(msg, "\r\n"), "\r\n")
	for i, l := range ls {
		if strings.HasPrefix(l, ".") {
			ls[i] = "." + l
		}
	}
	return ls
}

func itoa(n int) string { return strconv.Itoa(n) }
