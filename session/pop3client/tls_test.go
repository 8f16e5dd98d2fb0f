package pop3client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/pop3client"
	"gomta/session/selfsigned"
)

// newCert returns a server configuration with the loopback test certificate
// and a client one that trusts it.
func newCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	return mtatest.TLS(t, "") // the client fills in the dialled host
}

// startCfg runs a pop3.Server with cfg on loopback, implicit TLS if asked.
func startCfg(t *testing.T, be pop3.Backend, cfg pop3.Config, implicit bool) string {
	t.Helper()
	cfg.Hostname = host
	if implicit {
		return pop3test.StartTLS(t, cfg, be)
	}
	return pop3test.Start(t, cfg, be)
}

func TestStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := newCert(t)
	be := newBackend()
	long := strings.Repeat("p", 300) // AUTH PLAIN line over 255 octets: sent after "+ "
	be.AddUser("carol", long)
	addr := startCfg(t, be, pop3.Config{TLSConfig: srvTLS, AllowPlainAuth: func(net.Addr) bool { return false }}, false)

	c := dial(t, addr, pop3client.Options{})
	lines, err := c.Capa()
	if err != nil {
		t.Fatal(err)
	}
	caps := pop3client.ParseCaps(lines)
	if !caps.Has("stls") || caps.Has("USER") || caps.SASL("PLAIN") || c.TLS() {
		t.Fatalf("before TLS: caps %v, TLS %v", caps, c.TLS())
	}
	wantErr(t, c.Auth("alice", "secret"), "[AUTH] plaintext authentication disallowed, use STLS first")
	if err := c.StartTLS(cliTLS); err != nil {
		t.Fatal(err)
	}
	if !c.TLS() {
		t.Error("TLS() false after StartTLS")
	}
	if err := c.StartTLS(cliTLS); err == nil {
		t.Error("second StartTLS succeeded")
	}
	lines, err = c.Capa()
	if err != nil {
		t.Fatal(err)
	}
	caps = pop3client.ParseCaps(lines)
	if caps.Has("STLS") || !caps.Has("USER") || !caps.SASL("plain") || caps.SASL("LOGIN") {
		t.Fatalf("after TLS: caps %v", caps)
	}
	pe := wantErr(t, c.Auth("alice", "wrong"), "[AUTH] invalid user name or password")
	if pe.Code() != "AUTH" {
		t.Errorf("Code = %q", pe.Code())
	}
	wantErr(t, c.Auth("carol", long+"x"), "[AUTH] invalid user name or password")
	if err := c.Auth("carol", long); err != nil {
		t.Fatalf("AUTH PLAIN with a long password: %v", err)
	}
	if n, _, err := c.Stat(); err != nil || n != 0 {
		t.Fatalf("Stat = %d, %v", n, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestStartTLSRefused(t *testing.T) {
	t.Parallel()
	c := dial(t, start(t, newBackend()), pop3client.Options{})
	_, cliTLS := newCert(t)
	wantErr(t, c.StartTLS(cliTLS), "unknown command")
	if err := c.Login("alice", "secret"); err != nil { // still usable in plaintext
		t.Fatal(err)
	}
}

func TestStartTLSWrongCertificate(t *testing.T) {
	t.Parallel()
	srvTLS, _ := newCert(t)
	other, err := selfsigned.New(nil, []net.IP{net.IPv4(127, 0, 0, 1)}) // a certificate the server does not have
	if err != nil {
		t.Fatal(err)
	}
	otherTLS := selfsigned.ClientConfig(other, "")
	addr := startCfg(t, newBackend(), pop3.Config{TLSConfig: srvTLS}, false)
	c := dial(t, addr, pop3client.Options{})
	var ce *tls.CertificateVerificationError
	if err := c.StartTLS(otherTLS); !errors.As(err, &ce) {
		t.Fatalf("StartTLS against an untrusted certificate = %v", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("connection usable after a failed handshake")
	}
}

func TestDialTLS(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := newCert(t)
	addr := startCfg(t, newBackend(), pop3.Config{TLSConfig: srvTLS}, true)
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	var steps []string
	c, err := pop3client.DialTLS(ctx, addr, cliTLS, pop3client.Options{Trace: func(s string, d time.Duration) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.TLS() || c.Greeting() != host+" POP3 server ready" {
		t.Fatalf("TLS %v, greeting %q", c.TLS(), c.Greeting())
	}
	if err := c.Auth("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Retr(2)
	if err != nil || string(got) != msg2 {
		t.Fatalf("Retr = %q, %v", got, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"dial", "greeting", "AUTH", "RETR", "QUIT"}; !slices.Equal(steps, want) {
		t.Errorf("trace %v, want %v", steps, want)
	}
}

// TestStartTLSInjectedResponse: a server (or a man in the middle) that sends
// plaintext after its +OK to STLS is refused before the handshake.
func TestStartTLSInjectedResponse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc, err := l.Accept()
		if err != nil {
			return
		}
		defer sc.Close()
		sc.SetDeadline(time.Now().Add(ioWait))
		io.WriteString(sc, "+OK fake\r\n")
		buf := make([]byte, 64)
		sc.Read(buf) // STLS
		io.WriteString(sc, "+OK go ahead\r\n+OK maildrop has 9 messages\r\n")
		io.Copy(io.Discard, sc)
	}()
	c := dial(t, l.Addr().String(), pop3client.Options{Timeout: ioWait})
	_, cliTLS := newCert(t)
	if err := c.StartTLS(cliTLS); !errors.Is(err, pop3client.ErrProtocol) {
		t.Fatalf("StartTLS = %v, want ErrProtocol", err)
	}
	c.Close()
	<-done
}

func TestParseCaps(t *testing.T) {
	t.Parallel()
	caps := pop3client.ParseCaps([]string{"TOP", "sasl PLAIN login", "", "IMPLEMENTATION gomta 1.0", "STLS"})
	for _, tc := range []struct {
		got, want bool
		what      string
	}{
		{caps.Has("top"), true, "Has(top)"},
		{caps.Has("SASL"), true, "Has(SASL)"},
		{caps.Has("USER"), false, "Has(USER)"},
		{caps.SASL("plain"), true, "SASL(plain)"},
		{caps.SASL("LOGIN"), true, "SASL(LOGIN)"},
		{caps.SASL("CRAM-MD5"), false, "SASL(CRAM-MD5)"},
		{pop3client.ParseCaps(nil).SASL("PLAIN"), false, "empty SASL"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if got := caps["IMPLEMENTATION"]; !slices.Equal(got, []string{"gomta", "1.0"}) {
		t.Errorf("IMPLEMENTATION args %q", got)
	}
}
