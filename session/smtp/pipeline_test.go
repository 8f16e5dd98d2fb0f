package smtp

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes the server makes.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestPipelining sends a group of commands in one write and checks that their
// replies come back in order, in one write (RFC 2920 §3.2).
func TestPipelining(t *testing.T) {
	t.Parallel()
	var writes atomic.Int32
	be := &fakeBackend{}
	cc, _, done := pipeSession(Config{}, be, func(c net.Conn) net.Conn { return countingConn{c, &writes} })
	defer func() { cc.Close(); <-done }()
	cc.SetDeadline(time.Now().Add(30 * time.Second))
	cl := &client{t: t, c: cc, br: bufio.NewReader(cc)}
	cl.expect("220 " + testHost + " ESMTP gomta")
	if n := writes.Load(); n != 1 {
		t.Fatalf("greeting took %d writes", n)
	}
	// EHLO ends a group (RFC 2920 §3.1): the client waits for its reply.
	cl.send("EHLO pipe.example")
	cl.expectMulti("250-"+testHost+" greets pipe.example", "250-PIPELINING", "250-8BITMIME", "250-SIZE 33554432",
		"250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-DSN", "250-SMTPUTF8", "250 HELP")
	if n := writes.Load(); n != 2 {
		t.Errorf("EHLO reply took %d writes, want 1", n-1)
	}
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "RSET", "MAIL FROM:<a@example.org>",
		"RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 OK", "250 2.1.0 sender OK",
		"250 2.1.5 recipient OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	if n := writes.Load(); n != 3 {
		t.Errorf("pipelined replies took %d writes, want 1", n-2)
	}
	// The end of data, the next transaction and QUIT in one write.
	cl.write("body\r\n.\r\nRSET\r\nMAIL FROM:<>\r\nQUIT\r\n")
	cl.expectMulti("250 2.0.0 OK queued as MSG0001", "250 2.0.0 OK", "250 2.1.0 sender OK",
		"221 2.0.0 "+testHost+" closing connection")
	cl.expectClosed()
	if n := writes.Load(); n != 4 {
		t.Errorf("second group took %d writes, want 1", n-3)
	}
	if m := be.message(t, 0); len(m.rcpts) != 2 || !strings.HasSuffix(m.body.String(), "\r\nbody\r\n") {
		t.Errorf("message %q to %q", m.body.String(), m.rcpts)
	}
}

// TestPipelinedLoopback does the same over TCP, without counting writes.
func TestPipelinedLoopback(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.write("HELO a\r\n")
	cl.expect("250 " + testHost + " greets a")
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("x\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad>\r\nDATA\r\n")
	cl.expectMulti("250 2.0.0 OK queued as MSG0001", "250 2.1.0 sender OK", "250 2.1.5 recipient OK",
		"501 5.1.3 bad recipient address syntax: missing @domain", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("y\r\n.\r\nQUIT\r\n")
	cl.expectMulti("250 2.0.0 OK queued as MSG0002", "221 2.0.0 "+testHost+" closing connection")
	cl.expectClosed()
}
