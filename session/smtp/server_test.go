package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// runScript plays a transcript against a fresh server: "C: x" sends x+CRLF,
// "S: x" expects the reply line x exactly, "S: <closed>" expects the end of
// the connection. The greeting is checked first.
func runScript(t *testing.T, cfg Config, be *fakeBackend, script string) {
	t.Helper()
	_, addr := startServer(t, cfg, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "C: "):
			cl.send(line[3:])
		case line == "S: <closed>":
			cl.expectClosed()
		case strings.HasPrefix(line, "S: "):
			cl.expect(line[3:])
		case line == "":
		default:
			t.Fatalf("bad script line %q", line)
		}
	}
}

const ehloScript = `
C: EHLO client.example
S: 250-mx.test.example greets client.example
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-SIZE 33554432
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250-DSN
S: 250-SMTPUTF8
S: 250 HELP
`

func TestReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		be     *fakeBackend
		script string
	}{
		{name: "helo forms", script: `
C: HELO [127.0.0.1]
S: 250 mx.test.example greets [127.0.0.1]
C: helo bare
S: 250 mx.test.example greets bare
C: EhLo host.example.org
S: 250-mx.test.example greets host.example.org
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-SIZE 33554432
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250-DSN
S: 250-SMTPUTF8
S: 250 HELP
C: HELO
S: 501 5.5.4 HELO/EHLO requires a domain or address literal
C: EHLO
S: 501 5.5.4 HELO/EHLO requires a domain or address literal
C: QUIT
S: 221 2.0.0 mx.test.example closing connection
S: <closed>`},
		{name: "simple commands", script: `
C: NOOP
S: 250 2.0.0 OK
C: VRFY someone
S: 252 2.1.5 cannot VRFY user, but will accept message and attempt delivery
C: VRFY
S: 501 5.5.4 argument required
C: HELP
S: 214 2.0.0 commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT
C: EXPN list
S: 502 5.5.1 command not implemented
C: RSET
S: 250 2.0.0 OK
C: RSET now
S: 501 5.5.4 no arguments allowed
C: FOO bar
S: 500 5.5.2 command not recognized
C: quit
S: 221 2.0.0 mx.test.example closing connection
S: <closed>`},
		{name: "wrong order", script: `
C: MAIL FROM:<a@example.org>
S: 503 5.5.1 send HELO or EHLO first
C: RCPT TO:<b@example.org>
S: 503 5.5.1 send HELO or EHLO first
C: DATA
S: 503 5.5.1 send HELO or EHLO first
` + ehloScript + `
C: RCPT TO:<b@example.org>
S: 503 5.5.1 need MAIL before RCPT
C: DATA
S: 503 5.5.1 need RCPT before DATA
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: MAIL FROM:<a@example.org>
S: 503 5.5.1 nested MAIL command
C: DATA
S: 503 5.5.1 need RCPT before DATA
C: RSET
S: 250 2.0.0 OK
C: RCPT TO:<b@example.org>
S: 503 5.5.1 need MAIL before RCPT
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: HELO again
S: 250 mx.test.example greets again
C: RCPT TO:<b@example.org>
S: 503 5.5.1 need MAIL before RCPT`},
		{name: "syntax", cfg: Config{MaxErrors: 100}, script: ehloScript + `
C: MAIL FROM:a@example.org
S: 501 5.5.4 syntax error: address must be enclosed in <>
C: MAIL TO:<a@example.org>
S: 501 5.5.4 syntax error: expected "FROM:" or "TO:"
C: MAIL FROM:<a@@example.org>
S: 501 5.1.7 bad sender address syntax: invalid character in local part
C: MAIL FROM:<a@example.org> FOO=bar
S: 555 5.5.4 parameter not recognized: FOO
C: MAIL FROM:<a@example.org> SIZE=abc
S: 501 5.5.4 syntax error: bad SIZE value
C: MAIL FROM:<a@example.org> BODY=BINARYMIME
S: 501 5.5.4 syntax error: bad BODY value
C: MAIL FROM:<a@example.org> SIZE=1 SIZE=2
S: 501 5.5.4 syntax error: repeated parameter SIZE
C: MAIL FROM:<A.B@Example.ORG> size=100 body=8bitmime
S: 250 2.1.0 sender OK
C: RCPT TO:<>
S: 501 5.1.3 bad recipient address syntax: null path not allowed
C: RCPT TO:<b@-example.org>
S: 501 5.1.3 bad recipient address syntax: domain label must start and end with a letter or digit
C: RCPT TO:<b@example.org> XFOO=1
S: 555 5.5.4 parameter not recognized: XFOO
C: RCPT TO:<b@example.org>x
S: 501 5.5.4 syntax error: junk after address
C: RCPT TO: <"b c"@[192.0.2.1]>
S: 250 2.1.5 recipient OK
C: RCPT TO:<Postmaster>
S: 250 2.1.5 recipient OK`},
		{name: "null sender and size", cfg: Config{MaxSize: 1000}, script: `
C: EHLO x
S: 250-mx.test.example greets x
S: 250-PIPELINING
S: 250-8BITMIME
S: 250-SIZE 1000
S: 250-ENHANCEDSTATUSCODES
S: 250-CHUNKING
S: 250-DSN
S: 250-SMTPUTF8
S: 250 HELP
C: MAIL FROM:<> SIZE=1001
S: 552 5.3.4 message size exceeds fixed maximum message size
C: MAIL FROM:<> SIZE=99999999999999999999
S: 552 5.3.4 message size exceeds fixed maximum message size
C: MAIL FROM:<> SIZE=1000
S: 250 2.1.0 sender OK`},
		{name: "too many recipients", cfg: Config{MaxRcpts: 2}, script: ehloScript + `
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: RCPT TO:<b1@example.org>
S: 250 2.1.5 recipient OK
C: RCPT TO:<b2@example.org>
S: 250 2.1.5 recipient OK
C: RCPT TO:<b2@example.org>
S: 250 2.1.5 recipient OK
C: RCPT TO:<b3@example.org>
S: 452 4.5.3 too many recipients`},
		{name: "too many errors", cfg: Config{MaxErrors: 3}, script: `
C: BAD1
S: 500 5.5.2 command not recognized
C: NOOP
S: 250 2.0.0 OK
C: BAD2
S: 500 5.5.2 command not recognized
C: MAIL FROM:<a@b>
S: 503 5.5.1 send HELO or EHLO first
S: 421 4.7.0 too many errors, closing connection
S: <closed>`},
		{name: "backend replies", be: &fakeBackend{
			mailHook: func(_ *Peer, from string) error {
				if from == "spam@example.org" {
					return fmt.Errorf("policy: %w", &Reply{Code: 550, Enhanced: "5.7.1", Text: "go away"})
				}
				if from == "broken@example.org" {
					return errors.New("database on fire")
				}
				return nil
			},
			rcptHook: func(rcpt string) error {
				if rcpt == "nobody@example.org" {
					return &Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
				}
				return nil
			},
		}, script: ehloScript + `
C: MAIL FROM:<spam@example.org>
S: 550 5.7.1 go away
C: MAIL FROM:<broken@example.org>
S: 451 4.3.0 local error in processing, try again later
C: MAIL FROM:<ok@example.org>
S: 250 2.1.0 sender OK
C: RCPT TO:<nobody@example.org>
S: 550 5.1.1 no such user
C: DATA
S: 503 5.5.1 need RCPT before DATA`},
		{name: "new message refused", be: &fakeBackend{
			newHook: func() error { return &Reply{Code: 452, Enhanced: "4.3.1", Text: "queue full"} },
		}, script: ehloScript + `
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: RCPT TO:<b@example.org>
S: 250 2.1.5 recipient OK
C: DATA
S: 452 4.3.1 queue full
C: RCPT TO:<c@example.org>
S: 503 5.5.1 need MAIL before RCPT`},
		{name: "http request", script: `
C: GET / HTTP/1.1
S: <closed>`},
		{name: "http later is a command", script: `
C: NOOP
S: 250 2.0.0 OK
C: POST /x HTTP/1.1
S: 500 5.5.2 command not recognized`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := tc.be
			if be == nil {
				be = &fakeBackend{}
			}
			runScript(t, tc.cfg, be, tc.script)
		})
	}
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, Config{}, &fakeBackend{})
	cl := dialReady(t, addr)
	// 510 octets + CRLF is the limit; 511 is one too many.
	ok := "NOOP " + strings.Repeat("x", 510-5)
	cl.send(ok)
	cl.expect("250 2.0.0 OK")
	cl.send(ok + "y")
	cl.expect("500 5.5.2 line too long")
	cl.send("MAIL FROM:<" + strings.Repeat("a", 10000) + "@example.org>")
	cl.expect("500 5.5.2 line too long")
	cl.send("NOOP")
	cl.expect("250 2.0.0 OK")
	// The session is still in step for a whole transaction.
	sendMessage(t, cl, "a@example.org", []string{"b@example.org"}, "Subject: x\r\n\r\nhi\r\n")
}

// sendMessage runs one transaction and expects it to be queued.
func sendMessage(t *testing.T, cl *client, from string, rcpts []string, body string) {
	t.Helper()
	cl.send("MAIL FROM:<" + from + ">")
	cl.expect("250 2.1.0 sender OK")
	for _, r := range rcpts {
		cl.send("RCPT TO:<" + r + ">")
		cl.expect("250 2.1.5 recipient OK")
	}
	cl.send("DATA")
	cl.expect("354 end data with <CR><LF>.<CR><LF>")
	cl.write(body + ".\r\n")
	line, err := cl.readLine()
	if err != nil || !strings.HasPrefix(line, "250 2.0.0 OK queued as ") {
		t.Fatalf("end of DATA: %q %v", line, err)
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{Trusted: func(net.Addr) bool { return true }}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<Alice@Example.org> BODY=8BITMIME", "RCPT TO:<Bob@example.net>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\nlast\r\n.\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0001")
	cl.send("QUIT")
	cl.expect("221 2.0.0 mx.test.example closing connection")
	cl.expectClosed()

	m := be.message(t, 0)
	if m.from != "Alice@Example.org" || len(m.rcpts) != 1 || m.rcpts[0] != "Bob@example.net" {
		t.Errorf("envelope %q %q", m.from, m.rcpts)
	}
	got := m.body.String()
	hdr, body, ok := strings.Cut(got, "Subject:")
	if !ok {
		t.Fatalf("no body in %q", got)
	}
	if want := "Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\nlast\r\n"; "Subject:"+body != want {
		t.Errorf("body %q, want %q", "Subject:"+body, want)
	}
	wantHdr := "Received: from client.example ([127.0.0.1])\r\n\tby mx.test.example (gomta) with ESMTP id MSG0001\r\n\tfor <Bob@example.net>;\r\n\t"
	if !strings.HasPrefix(hdr, wantHdr) || !strings.HasSuffix(hdr, "\r\n") {
		t.Errorf("Received header %q, want prefix %q", hdr, wantHdr)
	}
	date := strings.TrimSuffix(strings.TrimPrefix(hdr, wantHdr), "\r\n")
	if _, err := time.Parse(time.RFC1123Z, date); err != nil {
		t.Errorf("Received date %q: %v", date, err)
	}
	if c, a := be.counts(); c != 1 || a != 0 {
		t.Errorf("committed %d aborted %d", c, a)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if !be.conns[0].Trusted || be.conns[0].Helo != "client.example" {
		t.Errorf("Peer %+v", be.conns[0])
	}
}

func TestEmptyMessageAndTwoRcpts(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	sendMessage(t, cl, "", []string{"x@example.org", "y@example.org"}, "")
	m := be.message(t, 0)
	if strings.Contains(m.body.String(), "for <") {
		t.Errorf("Received names a recipient of two: %q", m.body.String())
	}
	if !strings.HasSuffix(m.body.String(), "\r\n") || strings.Count(m.body.String(), "\r\n") != 3 {
		t.Errorf("body of the empty message: %q", m.body.String())
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.conns[0].Trusted {
		t.Error("Peer.Trusted without a Trusted function")
	}
}

func TestDataFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"too big", "Subject: x\r\n\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 30), "552 5.3.4 message size exceeds fixed maximum message size"},
		{"long line", strings.Repeat("z", 999) + "\r\n", "500 5.5.2 message line too long (at most 1000 octets including CRLF)"},
		{"bare LF", "a\nb\r\n", "550 5.5.2 bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"},
		{"bare CR", "a\rb\r\n", "550 5.5.2 bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := &fakeBackend{}
			_, addr := startServer(t, Config{MaxSize: 2000}, be)
			cl := dialReady(t, addr)
			cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
			cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
			cl.write(tc.body + ".\r\n")
			cl.expect(tc.want)
			// In step: the transaction is over, a new one works.
			cl.send("RCPT TO:<b@example.org>")
			cl.expect("503 5.5.1 need MAIL before RCPT")
			sendMessage(t, cl, "a@example.org", []string{"b@example.org"}, "ok\r\n")
			if c, a := be.counts(); c != 1 || a != 1 {
				t.Errorf("committed %d aborted %d, want 1 1", c, a)
			}
		})
	}
	// A line of exactly 1000 octets with CRLF is fine.
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	sendMessage(t, cl, "a@example.org", []string{"b@example.org"}, strings.Repeat("z", 998)+"\r\n."+strings.Repeat("z", 998)+"\r\n")
}

func TestCommitErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("disk on fire"), "451 4.3.0 local error in processing, try again later"},
		{&Reply{Code: 452, Enhanced: "4.3.1", Text: "insufficient system storage"}, "452 4.3.1 insufficient system storage"},
	} {
		be := &fakeBackend{commitHook: func(ctx context.Context, m *fakeMessage) error { return tc.err }}
		_, addr := startServer(t, Config{}, be)
		cl := dialReady(t, addr)
		cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
		cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
		cl.write("hi\r\n.\r\n")
		cl.expect(tc.want)
		cl.send("NOOP")
		cl.expect("250 2.0.0 OK")
		if c, a := be.counts(); c != 0 || a != 1 {
			t.Errorf("committed %d aborted %d, want 0 1", c, a)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, Config{CmdTimeout: 50 * time.Millisecond}, &fakeBackend{})
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.expect("421 4.4.2 " + testHost + " timeout, closing connection")
	cl.expectClosed()
}

func TestDataTimeout(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{DataTimeout: 50 * time.Millisecond}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("Subject: never ends\r\n")
	cl.expect("421 4.4.2 " + testHost + " timeout, closing connection")
	cl.expectClosed()
	if c, a := be.counts(); c != 0 || a != 1 {
		t.Errorf("committed %d aborted %d, want 0 1", c, a)
	}
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{rcptHook: func(string) error { panic("boom") }}
	_, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("250 2.1.0 sender OK")
	cl.send("RCPT TO:<b@example.org>")
	cl.expect("421 4.3.0 internal error, closing connection")
	cl.expectClosed()
	// The server still serves.
	dialReady(t, addr)
}
