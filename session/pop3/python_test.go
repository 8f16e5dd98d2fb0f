package pop3_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"

	"gomta/session/pop3"
)

// pyScript drives the server with Python's stdlib poplib, a client nobody
// here wrote. It prints one line per step.
const pyScript = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=10)
print(p.getwelcome().decode())
print(p.user('alice').decode())
print(p.pass_('secret').decode())
print(p.stat())
resp, lines, octets = p.list()
print(resp.decode(), [l.decode() for l in lines], octets)
resp, lines, octets = p.retr(1)
print(resp.decode(), octets)
print(repr(b'\r\n'.join(lines) + b'\r\n'))
print(p.dele(1).decode())
print(p.rset().decode())
print(p.noop().decode())
print(p.dele(2).decode())
print(p.quit().decode())
`

func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	_, port, _ := strings.Cut(ts.addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pyScript, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	n1, n2, total := itoa(len(msg1)), itoa(len(msg2)), itoa(len(msg1)+len(msg2))
	// poplib counts octets of the unstuffed lines plus CRLF.
	want := strings.Join([]string{
		"+OK " + host + " POP3 server ready",
		"+OK send PASS",
		"+OK maildrop has 2 messages (" + total + " octets)",
		"(2, " + total + ")",
		"+OK 2 messages (" + total + " octets) ['1 " + n1 + "', '2 " + n2 + "'] 12",
		"+OK " + n1 + " octets " + n1,
		`b'From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n..two dots\r\n.\r\nbye\r\n'`,
		"+OK message 1 deleted",
		"+OK maildrop has 2 messages (" + total + " octets)",
		"+OK",
		"+OK message 2 deleted",
		"+OK " + host + " signing off (1 messages left)",
	}, "\n") + "\n"
	if string(out) != want {
		t.Fatalf("poplib transcript:\n%s\nwant:\n%s", out, want)
	}
	got := be.Messages("alice")
	if len(got) != 1 || string(got[0]) != msg1 {
		t.Fatalf("after poplib session: %q, want only msg1", got)
	}
}

// pyTLSScript uses poplib's stls() and POP3_SSL (certificate not verified:
// it is self-signed by the test).
const pyTLSScript = `
import poplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=10)
print(sorted(p.capa().keys()))
print(p.stls(ctx).decode())
print(sorted(p.capa().keys()))
print(p.user('alice').decode())
print(p.pass_('secret').decode())
print(p.stat())
print(p.quit().decode())
s = poplib.POP3_SSL('127.0.0.1', int(sys.argv[2]), timeout=10, context=ctx)
print(s.getwelcome().decode())
print(s.user('alice').decode())
print(s.pass_('secret').decode())
print(s.quit().decode())
`

func TestPythonPoplibTLS(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cert := newCert(t)
	cfg := pop3.Config{TLSConfig: cert.server, AllowPlainAuth: func(net.Addr) bool { return false }}
	ts := start(t, newBackend(), cfg)
	tlsTS := startTLSListener(t, newBackend(), cfg)
	_, port, _ := strings.Cut(ts.addr, ":")
	_, tlsPort, _ := strings.Cut(tlsTS.addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pyTLSScript, port, tlsPort).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	total := itoa(len(msg1) + len(msg2))
	want := strings.Join([]string{
		"['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL', 'UTF8']",
		"+OK Begin TLS negotiation",
		"['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER', 'UTF8']",
		"+OK send PASS",
		"+OK maildrop has 2 messages (" + total + " octets)",
		"(2, " + total + ")",
		"+OK " + host + " signing off (2 messages left)",
		"+OK " + host + " POP3 server ready",
		"+OK send PASS",
		"+OK maildrop has 2 messages (" + total + " octets)",
		"+OK " + host + " signing off (2 messages left)",
	}, "\n") + "\n"
	if string(out) != want {
		t.Fatalf("poplib transcript:\n%s\nwant:\n%s", out, want)
	}
}
