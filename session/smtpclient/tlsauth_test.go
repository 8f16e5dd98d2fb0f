package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/mta/mtatest"
	"gomta/session/smtp"
)

// clientTLS trusts the test certificate; ServerName is left for the client to fill.
func clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	_, cli := mtatest.TLS(t, "")
	return cli
}

// memBackend accepts everything and remembers each Conn at MAIL and each body.
type memBackend struct {
	mu     sync.Mutex
	conns  []smtp.Peer
	bodies []string
}

func (b *memBackend) Mail(_ context.Context, c *smtp.Peer, _ string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conns = append(b.conns, *c)
	return nil
}

func (b *memBackend) Rcpt(context.Context, *smtp.Peer, string, string) error { return nil }

func (b *memBackend) NewMessage(context.Context, *smtp.Peer) (smtp.MessageWriter, error) {
	return &memMessage{be: b}, nil
}

type memMessage struct {
	be  *memBackend
	buf strings.Builder
}

func (m *memMessage) Write(p []byte) (int, error) { return m.buf.Write(p) }
func (m *memMessage) ID() string                  { return "M1" }
func (m *memMessage) Abort()                      {}
func (m *memMessage) Commit(context.Context, string, []string) error {
	m.be.mu.Lock()
	defer m.be.mu.Unlock()
	m.be.bodies = append(m.be.bodies, m.buf.String())
	return nil
}

// startSMTP runs gomta's SMTP server with TLS and AUTH (alice/secret) on
// 127.0.0.1:0; implicit selects ServeTLS.
func startSMTP(t *testing.T, be smtp.Backend, withTLS, implicit bool) string {
	t.Helper()
	cfg := smtp.Config{Hostname: "mx.test", Logger: zaptest.NewLogger(t),
		Auth: func(_ context.Context, u, p string) bool { return u == "alice" && p == "secret" }}
	if withTLS {
		cfg.TLSConfig, _ = mtatest.TLS(t, "")
	}
	srv := smtp.NewServer(cfg, be)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		if implicit {
			served <- srv.ServeTLS(l)
		} else {
			served <- srv.Serve(l)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
	})
	return l.Addr().String()
}

// TestStartTLSAuthAgainstServer drives gomta's server: AUTH is not offered
// before TLS, then STARTTLS, a wrong and a right password, and a message.
func TestStartTLSAuthAgainstServer(t *testing.T) {
	t.Parallel()
	be := &memBackend{}
	addr := startSMTP(t, be, true, false)
	c, err := Dial(context.Background(), addr, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth("alice", "secret"); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("Auth before TLS: %v, want ErrNoAuth", err)
	}
	if err := c.StartTLS(clientTLS(t)); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if !c.TLS() {
		t.Fatal("TLS() false after StartTLS")
	}
	if err := c.StartTLS(clientTLS(t)); !errors.Is(err, ErrTLSActive) {
		t.Errorf("second StartTLS: %v", err)
	}
	err = c.Auth("alice", "guess")
	wantReply(t, err, 535, "5.7.8")
	if strings.Contains(err.Error(), "guess") {
		t.Errorf("error %q shows the password", err)
	}
	if err := c.Auth("alice", "secret"); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if _, err := c.Send("alice@example.org", []string{"b@example.net"}, strings.NewReader("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.conns) != 1 || !be.conns[0].TLS || be.conns[0].AuthUser != "alice" {
		t.Errorf("server saw %+v", be.conns)
	}
	if len(be.bodies) != 1 || !strings.Contains(be.bodies[0], "with ESMTPSA id") {
		t.Errorf("bodies %q", be.bodies)
	}
}

func TestHelloTLS(t *testing.T) {
	t.Parallel()
	for _, withTLS := range []bool{true, false} {
		addr := startSMTP(t, &memBackend{}, withTLS, false)
		c, err := Dial(context.Background(), addr, testOpts())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.HelloTLS(clientTLS(t)); err != nil {
			t.Fatalf("HelloTLS (server TLS %v): %v", withTLS, err)
		}
		if c.TLS() != withTLS {
			t.Errorf("TLS() %v, want %v", c.TLS(), withTLS)
		}
		if st, ok := c.TLSConnectionState(); ok != withTLS || ok && !st.HandshakeComplete {
			t.Errorf("TLSConnectionState %v %v", st.HandshakeComplete, ok)
		}
		if ok, _ := c.Extension("AUTH"); ok != withTLS { // offered only under TLS
			t.Errorf("AUTH offered %v with TLS %v", ok, withTLS)
		}
		if err := c.Quit(); err != nil {
			t.Error(err)
		}
	}
}

func TestDialTLS(t *testing.T) {
	t.Parallel()
	be := &memBackend{}
	addr := startSMTP(t, be, true, true)
	opt := testOpts()
	opt.TLSConfig = clientTLS(t)
	c, err := DialTLS(context.Background(), addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.TLS() || c.Greeting() != "mx.test ESMTP gomta" {
		t.Fatalf("TLS %v greeting %q", c.TLS(), c.Greeting())
	}
	if err := c.Auth("alice", "secret"); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	opt.TLSConfig = nil // the system roots do not know the test certificate
	if _, err := DialTLS(context.Background(), addr, opt); err == nil {
		t.Error("DialTLS verified an unknown certificate")
	}
}

// scripted runs a server over net.Pipe that reads one line per step, checks
// it and writes the step's answer. It reports the first mismatch.
func scripted(t *testing.T, ext string, steps [][2]string) (*Client, <-chan error) {
	t.Helper()
	cc, sc := net.Pipe()
	t.Cleanup(func() { cc.Close(); sc.Close() })
	done := make(chan error, 1)
	go func() {
		br := bufio.NewReader(sc)
		io.WriteString(sc, "220 fake\r\n")
		line, _ := br.ReadString('\n')
		if !strings.HasPrefix(line, "EHLO ") {
			done <- errors.New("want EHLO, got " + line)
			return
		}
		io.WriteString(sc, "250-fake\r\n250 "+ext+"\r\n")
		for _, st := range steps {
			line, err := br.ReadString('\n')
			if err != nil || line != st[0]+"\r\n" {
				done <- errors.New("got " + line + ", want " + st[0])
				return
			}
			io.WriteString(sc, st[1]+"\r\n")
		}
		done <- nil
	}()
	opt := testOpts()
	opt.InsecureAuth = true // a pipe is not loopback
	c, err := NewClient(cc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c, done
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthLoginFallback(t *testing.T) {
	t.Parallel()
	c, done := scripted(t, "AUTH LOGIN CRAM-MD5", [][2]string{
		{"AUTH LOGIN", "334 VXNlcm5hbWU6"},
		{b64("alice"), "334 UGFzc3dvcmQ6"},
		{b64("secret"), "235 2.7.0 ok"},
	})
	if err := c.Auth("alice", "secret"); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAuthPlainLong: a response too long for the AUTH line goes after "334 ".
func TestAuthPlainLong(t *testing.T) {
	t.Parallel()
	pass := strings.Repeat("p", 600)
	c, done := scripted(t, "AUTH PLAIN LOGIN", [][2]string{
		{"AUTH PLAIN", "334 "},
		{b64("\x00alice\x00" + pass), "235 2.7.0 ok"},
	})
	if err := c.Auth("alice", pass); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAuthUnexpectedChallenge: a 334 after the last response is cancelled.
func TestAuthUnexpectedChallenge(t *testing.T) {
	t.Parallel()
	c, done := scripted(t, "AUTH PLAIN", [][2]string{
		{"AUTH PLAIN " + b64("\x00alice\x00secret"), "334 more?"},
		{"*", "501 5.0.0 cancelled"},
	})
	wantReply(t, c.Auth("alice", "secret"), 501, "5.0.0")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAuthRefusedWithoutTLS(t *testing.T) {
	t.Parallel()
	cc, sc := net.Pipe()
	defer sc.Close()
	go func() {
		io.WriteString(sc, "220 fake\r\n")
		bufio.NewReader(sc).ReadString('\n')
		io.WriteString(sc, "250-fake\r\n250 AUTH PLAIN\r\n")
	}()
	c, err := NewClient(cc, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth("alice", "secret"); !errors.Is(err, ErrInsecureAuth) {
		t.Fatalf("Auth on a plain non-loopback connection: %v", err)
	}
}

// TestStartTLSInjectedReply: octets after the 220 to STARTTLS break the connection.
func TestStartTLSInjectedReply(t *testing.T) {
	t.Parallel()
	c, _ := scripted(t, "STARTTLS", [][2]string{{"STARTTLS", "220 go ahead\r\n250 injected"}})
	var pe *ProtocolError
	if err := c.StartTLS(clientTLS(t)); !errors.As(err, &pe) {
		t.Fatalf("StartTLS: %v, want a ProtocolError", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("connection still usable")
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	t.Parallel()
	c, _ := scripted(t, "PIPELINING", nil)
	if err := c.StartTLS(clientTLS(t)); !errors.Is(err, ErrNoStartTLS) {
		t.Fatalf("StartTLS: %v", err)
	}
}
