package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// serverTLS is the server side configuration with the test certificate.
func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	srv, _ := mtatest.TLS(t, "127.0.0.1")
	return srv
}

// clientTLS trusts the test certificate and checks the name 127.0.0.1.
func clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	_, cli := mtatest.TLS(t, "127.0.0.1")
	return cli
}

// startTLS runs the client side of the handshake on cl's connection.
func (cl *client) startTLS() {
	cl.t.Helper()
	if cl.br.Buffered() > 0 {
		cl.t.Fatalf("%d octets after the 220 to STARTTLS", cl.br.Buffered())
	}
	tc := tls.Client(cl.c, clientTLS(cl.t))
	if err := tc.Handshake(); err != nil {
		cl.t.Fatalf("TLS handshake: %v", err)
	}
	cl.c = tc
	cl.br = bufio.NewReader(tc)
}

// ehlo sends EHLO and checks the reply lines exactly; ext are the keywords
// between SIZE/ENHANCEDSTATUSCODES and HELP (STARTTLS, AUTH ...).
func (cl *client) ehlo(ext ...string) {
	cl.t.Helper()
	cl.send("EHLO client.example")
	cl.expectMulti("250-"+testHost+" greets client.example", "250-PIPELINING", "250-8BITMIME",
		"250-SIZE 33554432", "250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-DSN", "250-SMTPUTF8")
	for _, e := range ext {
		cl.expect("250-" + e)
	}
	cl.expect("250 HELP")
}

// sendMail runs one transaction and returns the stored message.
func (cl *client) sendMail(be *fakeBackend, n int) *fakeMessage {
	cl.t.Helper()
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("250 2.1.0 sender OK")
	cl.send("RCPT TO:<b@example.net>")
	cl.expect("250 2.1.5 recipient OK")
	cl.send("DATA")
	cl.expect("354 end data with <CR><LF>.<CR><LF>")
	cl.send("Subject: t", "", "body", ".")
	cl.expect(fmt.Sprintf("250 2.0.0 OK queued as MSG%04d", n+1))
	return be.message(cl.t, n)
}

// receivedWith returns the protocol of the "with" clause of a message's Received header.
func receivedWith(t testing.TB, m *fakeMessage) string {
	t.Helper()
	body := m.body.String()
	_, rest, ok := strings.Cut(body, "(gomta) with ")
	if !ok {
		t.Fatalf("no Received header with clause in %q", body)
	}
	proto, _, _ := strings.Cut(rest, " ")
	return proto
}

func TestStartTLSThenMail(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t)}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("STARTTLS")
	cl.send("STARTTLS")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.startTLS()
	cl.send("MAIL FROM:<a@example.org>") // the EHLO before TLS is forgotten (RFC 3207 §4.2)
	cl.expect("503 5.5.1 send HELO or EHLO first")
	cl.ehlo() // no STARTTLS any more
	cl.send("STARTTLS")
	cl.expect("503 5.5.1 TLS already active")
	m := cl.sendMail(be, 0)
	if got := receivedWith(t, m); got != "ESMTPS" {
		t.Errorf("Received with %q, want ESMTPS", got)
	}
	be.mu.Lock()
	c := be.conns[len(be.conns)-1]
	be.mu.Unlock()
	if !c.TLS || c.Helo != "client.example" {
		t.Errorf("Peer %+v, want TLS", c)
	}
	cl.send("QUIT")
	cl.expect("221 2.0.0 " + testHost + " closing connection")
}

// TestStartTLSInjection pipelines commands after STARTTLS in the same packet:
// they arrived in plain text and must not run under TLS (RFC 3207 §6).
func TestStartTLSInjection(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t)}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("STARTTLS")
	cl.write("STARTTLS\r\nRSET\r\nEHLO evil.example\r\nMAIL FROM:<evil@example.org>\r\n")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.startTLS()
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("503 5.5.1 send HELO or EHLO first") // no injected EHLO ran
	cl.send("NOOP")
	cl.expect("250 2.0.0 OK")
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.conns) != 0 {
		t.Errorf("backend asked about MAIL %d times: %+v", len(be.conns), be.conns)
	}
}

func TestStartTLSRefusals(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, plain := startServer(t, Config{}, be)
	cl := dialReady(t, plain)
	cl.send("STARTTLS")
	cl.expect("454 4.7.0 TLS not available")

	_, addr := startServer(t, Config{TLSConfig: serverTLS(t)}, be)
	cl = dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.send("STARTTLS")
	cl.expect("503 5.5.1 send HELO or EHLO first")
	cl.ehlo("STARTTLS")
	cl.send("STARTTLS now")
	cl.expect("501 5.5.4 no arguments allowed")
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("250 2.1.0 sender OK")
	cl.send("STARTTLS")
	cl.expect("503 5.5.1 STARTTLS not allowed during a mail transaction")
	cl.send("RSET", "STARTTLS")
	cl.expect("250 2.0.0 OK")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.write("this is not a TLS ClientHello\r\n") // the handshake fails: the session ends
	cl.expectClosed()
}

// TestServeTLS is implicit TLS (RFC 8314): handshake, then the greeting.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	cfg := Config{Hostname: testHost, TLSConfig: serverTLS(t), Auth: testAuth}
	srv := NewServer(cfg, be)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	tc, err := tls.Dial("tcp", l.Addr().String(), clientTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	cl := &client{t: t, c: tc, br: bufio.NewReader(tc)}
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN") // AUTH under TLS, no STARTTLS
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("235 2.7.0 authentication successful")
	if got := receivedWith(t, cl.sendMail(be, 0)); got != "ESMTPSA" {
		t.Errorf("Received with %q, want ESMTPSA", got)
	}
	cl.send("QUIT")
	cl.expect("221 2.0.0 " + testHost + " closing connection")

	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := NewServer(Config{}, be).ServeTLS(l2); err == nil {
		t.Error("ServeTLS without TLSConfig: no error")
	}
}
