package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
)

// testCert holds the server and client configurations of the loopback test
// certificate.
type testCert struct {
	server *tls.Config
	client *tls.Config // verifies the server against the certificate
}

func newCert(t testing.TB) *testCert {
	t.Helper()
	srv, cli := mtatest.TLS(t, "127.0.0.1")
	return &testCert{server: srv, client: cli}
}

// startTLS sends STLS, checks the reply and that nothing follows it in
// plaintext, and runs the client handshake on the connection.
func (c *conn) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STLS", "+OK Begin TLS negotiation")
	c.upgrade(cfg)
}

func (c *conn) upgrade(cfg *tls.Config) {
	c.t.Helper()
	if n := c.r.Buffered(); n > 0 {
		c.t.Fatalf("%d octets after +OK to STLS before TLS", n)
	}
	tc := tls.Client(c.c, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.c = tc
	c.r = bufio.NewReader(tc)
}

func capa(stls bool, plain bool) []string {
	l := []string{"+OK capability list follows", "TOP", "UIDL"}
	if plain {
		l = append(l, "USER", "SASL PLAIN")
	}
	l = append(l, "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE")
	if stls {
		l = append(l, "STLS")
	}
	if plain {
		l = append(l, "UTF8 USER")
	} else {
		l = append(l, "UTF8")
	}
	return append(l, "IMPLEMENTATION gomta", ".")
}

func TestSTLS(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	c.cmd("CAPA", capa(true, true)...)
	c.cmd("STLS x", "-ERR too many arguments")
	c.startTLS(cert.client)
	c.cmd("CAPA", capa(false, true)...)
	c.cmd("STLS", "-ERR TLS already active")
	c.loginAlice()
	c.cmd("STLS", "-ERR already logged in")
	c.cmd("STAT", "+OK 2 "+itoa(len(msg1)+len(msg2)))
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()
}

func TestSTLSNotConfigured(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	c.cmd("STLS", "-ERR unknown command")
	c.cmd("CAPA", capa(false, true)...)
}

// TestSTLSInjection: plaintext pipelined behind STLS (by the client or a
// man in the middle) must not run after the handshake.
func TestSTLSInjection(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	c.write("STLS\r\nUSER alice\r\n")
	c.expect("+OK Begin TLS negotiation")
	c.upgrade(cert.client)
	c.cmd("PASS secret", "-ERR USER first") // the USER above never ran
	c.loginAlice()
}

// TestSTLSForgetsUser: a USER given before STLS does not survive it.
func TestSTLSForgetsUser(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	c.cmd("USER alice", "+OK send PASS")
	c.startTLS(cert.client)
	c.cmd("PASS secret", "-ERR USER first")
}

func TestSTLSBadHandshake(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	be := newBackend()
	ts := start(t, be, pop3.Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	c.cmd("STLS", "+OK Begin TLS negotiation")
	c.write("USER alice\r\nPASS secret\r\n") // not a ClientHello
	c.expectEOF()
	if be.Locked("alice") {
		t.Fatal("plaintext after STLS logged in")
	}
}

func TestPlainAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	var asked, tcpAsked atomic.Int32
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server, MaxErrors: 100,
		AllowPlainAuth: func(remote net.Addr) bool {
			asked.Add(1)
			if _, ok := remote.(*net.TCPAddr); ok {
				tcpAsked.Add(1)
			}
			return false
		}})
	c := dial(t, ts.addr)
	c.cmd("CAPA", capa(true, false)...)
	c.cmd("USER alice", "-ERR [AUTH] plaintext authentication disallowed, use STLS first")
	c.cmd("PASS secret", "-ERR USER first")
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "-ERR [AUTH] plaintext authentication disallowed, use STLS first")
	c.cmd("AUTH PLAIN", "-ERR [AUTH] plaintext authentication disallowed, use STLS first") // no "+ " first
	c.startTLS(cert.client)
	c.cmd("CAPA", capa(false, true)...)
	c.loginAlice()
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()
	if asked.Load() != 1 || tcpAsked.Load() != 1 {
		t.Errorf("AllowPlainAuth called %d times (%d with a TCP address), want once", asked.Load(), tcpAsked.Load())
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	ts := startTLSListener(t, newBackend(), pop3.Config{TLSConfig: cert.server})

	nc, err := tls.Dial("tcp", ts.addr, cert.client)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(ioWait))
	c := &conn{t: t, c: nc, r: bufio.NewReader(nc)}
	c.expect("+OK " + host + " POP3 server ready")
	c.cmd("CAPA", capa(false, true)...)
	c.cmd("STLS", "-ERR TLS already active")
	c.loginAlice()
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()

	// A plaintext client on the TLS port gets nothing and is dropped.
	raw := dialRaw(t, ts.addr, "")
	raw.write("USER alice\r\n")
	raw.expectEOF()
}

func TestServeTLSWithoutConfig(t *testing.T) {
	t.Parallel()
	srv := pop3.NewServer(pop3.Config{Hostname: host}, newBackend())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTLS(l); err == nil {
		t.Fatal("ServeTLS without TLSConfig succeeded")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener left open")
	}
}

// startTLSListener is start with ServeTLS: an implicit-TLS port.
func startTLSListener(t *testing.T, be pop3.Backend, cfg pop3.Config) *testServer {
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
	go func() { ts.served <- ts.srv.ServeTLS(l) }()
	t.Cleanup(func() { shutdownNow(t, ts) })
	return ts
}

// TestShutdownMidHandshakeAndAuth: sessions waiting for a TLS ClientHello, for
// an AUTH continuation or for the STLS handshake do not hold Shutdown up.
func TestShutdownMidHandshakeAndAuth(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	be := newBackend()
	plainTS := start(t, be, pop3.Config{TLSConfig: cert.server})
	tlsTS := startTLSListener(t, be, pop3.Config{TLSConfig: cert.server})

	silent := dialRaw(t, tlsTS.addr, "") // never sends a ClientHello
	auth := dial(t, plainTS.addr)
	auth.cmd("AUTH PLAIN", "+ ")
	stls := dial(t, plainTS.addr)
	stls.cmd("STLS", "+OK Begin TLS negotiation") // and no handshake

	for _, ts := range []*testServer{plainTS, tlsTS} {
		ctx, cancel := context.WithTimeout(context.Background(), ioWait)
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		cancel()
		ts.waitServe(t)
	}
	auth.expect("-ERR [SYS/TEMP] server shutting down")
	auth.expectEOF()
	stls.expectEOF()
	silent.expectEOF()
}

func TestCapaInTransaction(t *testing.T) {
	t.Parallel()
	cert := newCert(t)
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("CAPA", capa(true, true)...) // RFC 2449 §5: the same in both states
}
