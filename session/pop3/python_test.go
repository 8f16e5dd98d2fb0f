package pop3_test

import (
	"context"
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
