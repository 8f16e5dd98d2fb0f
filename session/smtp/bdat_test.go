package smtp

import (
	"fmt"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// afterReceived is the message as the client sent it: the body without the
// Received field the server put before it.
func afterReceived(t *testing.T, body string) string {
	t.Helper()
	if !strings.HasPrefix(body, "Received: ") {
		t.Fatalf("no Received field first: %q", body)
	}
	i := strings.Index(body, "\r\n") + 2
	for strings.HasPrefix(body[i:], "\t") {
		i += strings.Index(body[i:], "\r\n") + 2
	}
	return body[i:]
}

// bdat is a BDAT command with its chunk.
func bdat(chunk string, last bool) string {
	if last {
		return fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk)
	}
	return fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk)
}

// TestBdatPipelined sends a whole transaction in one write, its message in
// three chunks read exactly by size: a line that looks like an end of data,
// a dot-stuffed-looking line and commands inside the chunks are message
// text, kept as sent; a CRLF split across two chunks is a CRLF.
func TestBdatPipelined(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	chunks := []string{"Subject: chunks\r\n\r\n.\r\n..two dots\r", "\nMAIL FROM:<evil@example.org>\r\n", "QUIT\r\nend\r\n"}
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" +
		bdat(chunks[0], false) + bdat(chunks[1], false) + bdat(chunks[2], true) + "NOOP\r\n")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK",
		fmt.Sprintf("250 2.0.0 %d octets received", len(chunks[0])),
		fmt.Sprintf("250 2.0.0 %d octets received", len(chunks[1])),
		"250 2.0.0 OK queued as MSG0001", "250 2.0.0 OK")
	m := be.message(t, 0)
	if got, want := afterReceived(t, m.body.String()), strings.Join(chunks, ""); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if m.from != "a@example.org" || len(m.rcpts) != 1 {
		t.Errorf("envelope %q %q", m.from, m.rcpts)
	}
	// The next transaction uses DATA: the two do not mix within one, but may
	// follow each other in a session.
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.send("BDAT 3 LAST", "abc", ".")
	cl.expect("250 2.0.0 OK queued as MSG0002")
	if got := afterReceived(t, be.message(t, 1).body.String()); got != "BDAT 3 LAST\r\nabc\r\n" {
		t.Errorf("DATA after 354 took %q, want the BDAT line as text", got)
	}
}

// TestBdatSizeLimit: a chunk that takes the message over MaxSize gets 552
// 5.3.4, its octets are read and thrown away, and the transaction ends: a
// chunk pipelined after it is refused (503) and read too, and the session
// stays in step.
func TestBdatSizeLimit(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{MaxSize: 100}, be)
	cl := dialReady(t, addr)
	// Size lines of 60 octets each, made of commands.
	line := strings.Repeat("RSET", 14) + "\r\n"
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" +
		bdat(line, false) + bdat(line, false) + bdat(line, true) + "NOOP\r\n")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 58 octets received",
		"552 5.3.4 message size exceeds fixed maximum message size",
		"503 5.5.1 need RCPT before BDAT", "250 2.0.0 OK")
	// One chunk over the limit on its own, before any message was opened.
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" + bdat(strings.Repeat(line, 2), true) + "NOOP\r\n")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK",
		"552 5.3.4 message size exceeds fixed maximum message size", "250 2.0.0 OK")
	if c, a := be.counts(); c != 0 || a != 1 {
		t.Errorf("committed %d aborted %d, want 0 1", c, a)
	}
	// Exactly at the limit is taken.
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" + bdat(strings.Repeat("x", 98)+"\r\n", true))
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 OK queued as MSG0002")
}

// TestBdatSequence: BDAT needs a recipient (its chunk is read anyway), DATA
// may not follow a chunk of the same transaction, other transaction commands
// neither, RSET and EHLO abort the message, and BDAT 0 LAST ends one.
func TestBdatSequence(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.write(bdat("NOOP\r\n", true))
	cl.expect("503 5.5.1 send HELO or EHLO first")
	cl.send("EHLO client.example")
	for line, _ := cl.readLine(); strings.HasPrefix(line, "250-"); line, _ = cl.readLine() {
	}
	cl.write(bdat("RSET\r\n", false) + "MAIL FROM:<a@example.org>\r\n" + bdat("RSET\r\n", false))
	cl.expectMulti("503 5.5.1 need RCPT before BDAT", "250 2.1.0 sender OK", "503 5.5.1 need RCPT before BDAT")
	cl.write("RCPT TO:<b@example.org>\r\n" + bdat("Subject: s\r\n", false))
	cl.expectMulti("250 2.1.5 recipient OK", "250 2.0.0 12 octets received")
	// DATA alone: a refused DATA must end a pipelined group (RFC 2920 §3.1).
	const inChunks = "503 5.5.1 only BDAT, RSET or QUIT may follow a BDAT chunk that is not LAST"
	cl.send("DATA")
	cl.expect(inChunks)
	cl.send("MAIL FROM:<c@example.org>", "RCPT TO:<d@example.org>")
	cl.expectMulti(inChunks, inChunks)
	cl.write(bdat("\r\nbody", false) + bdat("", true))
	cl.expectMulti("250 2.0.0 6 octets received", "250 2.0.0 OK queued as MSG0001")
	// The last line without its CRLF gets one.
	if got := afterReceived(t, be.message(t, 0).body.String()); got != "Subject: s\r\n\r\nbody\r\n" {
		t.Errorf("message %q", got)
	}
	if m := be.message(t, 0); m.from != "a@example.org" || strings.Join(m.rcpts, ",") != "b@example.org" {
		t.Errorf("envelope %q %q", m.from, m.rcpts)
	}

	for _, abort := range []string{"RSET", "EHLO again.example"} {
		cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" + bdat("x\r\n", false))
		cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 3 octets received")
		cl.send(abort)
		for line, _ := cl.readLine(); strings.HasPrefix(line, "250-"); line, _ = cl.readLine() {
		}
		cl.write(bdat("y\r\n", true))
		cl.expect("503 5.5.1 need RCPT before BDAT")
	}
	if c, a := be.counts(); c != 1 || a != 2 {
		t.Errorf("committed %d aborted %d, want 1 2", c, a)
	}
}

// TestBdatContent: the checks of DATA hold across chunks: bare CR or LF,
// NUL, long lines and too many Received fields refuse the message (at the
// chunk where they are found, which is read whole), and the session goes on.
func TestBdatContent(t *testing.T) {
	t.Parallel()
	const (
		bare = "550 5.5.2 bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"
		loop = "554 5.4.6 too many Received header fields: mail loop detected"
	)
	tests := []struct {
		name   string
		chunks []string
		reply  string
	}{
		{"bare LF", []string{"a\nb\r\n"}, bare},
		{"bare CR", []string{"a\rb\r\n"}, bare},
		{"CR at the end", []string{"a\r"}, bare},
		{"CR then no LF", []string{"a\r", "b\r\n"}, bare},
		{"NUL", []string{"a\x00\r\n"}, "550 5.5.2 NUL octet in message (RFC 5322 section 2.3)"},
		{"long line across chunks", []string{strings.Repeat("x", 600), strings.Repeat("y", 600) + "\r\n"},
			"500 5.5.2 message line too long (at most 1000 octets including CRLF)"},
		{"loop across chunks", []string{"Received: a\r\nRece", "ived: b\r\n\r\n"}, loop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := &fakeBackend{}
			_, addr := startServer(t, Config{MaxReceived: 2}, be)
			cl := dialReady(t, addr)
			in := "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
			for i, c := range tc.chunks {
				in += bdat(c, i == len(tc.chunks)-1)
			}
			cl.write(in + "NOOP\r\n")
			cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK")
			for line, _ := cl.readLine(); line != tc.reply; line, _ = cl.readLine() {
				if !strings.HasPrefix(line, "250 2.0.0 ") || strings.Contains(line, "queued") {
					t.Fatalf("got %q, want %q", line, tc.reply)
				}
			}
			cl.expect("250 2.0.0 OK") // a refused chunk ends the transaction: the rest is refused
			if c, a := be.counts(); c != 0 || a != 1 {
				t.Errorf("committed %d aborted %d, want 0 1", c, a)
			}
		})
	}
}

// TestBdatBadSize: a BDAT whose size cannot be read ends the session, since
// where its chunk ends is unknown.
func TestBdatBadSize(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"", "x", "-1", "1 FIRST", "99999999999999999999", "1  LAST"} {
		_, addr := startServer(t, Config{}, &fakeBackend{})
		cl := dialReady(t, addr)
		cl.send("BDAT " + arg)
		cl.expect("501 5.5.4 syntax: BDAT <size> [LAST]; closing connection")
		cl.expectClosed()
	}
}

// TestBdatDropped: a client gone between chunks or inside one leaves no
// message behind: the draft is aborted.
func TestBdatDropped(t *testing.T) {
	t.Parallel()
	for _, tail := range []string{bdat("x\r\n", false), "BDAT 100 LAST\r\nonly part"} {
		be := &fakeBackend{}
		_, addr := startServer(t, Config{}, be)
		cl := dialReady(t, addr)
		cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" + tail)
		cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK")
		cl.c.Close()
		mtatest.Eventually(t, "the message aborted", func() bool {
			c, a := be.counts()
			return c == 0 && a == 1
		})
	}
}
