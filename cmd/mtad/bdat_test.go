package main

import (
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestCourseBdat sends one message in pipelined BDAT chunks (RFC 3030) to
// exmail.qq.com's mtad, for a local account and one on gmail.com: both get it
// with its text as sent (a CRLF split across two chunks, a line that begins
// with a dot), through the local mailbox and through a relay.
func TestCourseBdat(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	conn, err := net.Dial("tcp", c.qqSMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	tc.PrintfLine("EHLO chunker.example")
	_, ext, err := tc.ReadResponse(250)
	if err != nil || !strings.Contains(ext, "\nCHUNKING") {
		t.Fatalf("EHLO: %q %v, want CHUNKING offered", ext, err)
	}
	chunks := []string{
		"From: usr1@mail.sustech.edu.cn\r\nTo: usr@gmail.com, usr2@mail.sustech.edu.cn\r\nSubject: chunked\r\n" +
			"Message-ID: <chunked@test>\r\n\r\nfirst line\r",
		"\n.leading dot\r\n",
		"last line\r\n",
	}
	in := "MAIL FROM:<usr1@mail.sustech.edu.cn>\r\nRCPT TO:<usr@gmail.com>\r\nRCPT TO:<usr2@mail.sustech.edu.cn>\r\n"
	for i, ch := range chunks {
		last := ""
		if i == len(chunks)-1 {
			last = " LAST"
		}
		in += fmt.Sprintf("BDAT %d%s\r\n%s", len(ch), last, ch)
	}
	if _, err := conn.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // MAIL, two RCPT, three chunks
		code, msg, err := tc.ReadResponse(250)
		if err != nil {
			t.Fatalf("reply %d: %d %s: %v", i, code, msg, err)
		}
		if i == 5 && !strings.Contains(msg, "queued as") {
			t.Fatalf("last chunk answered %q, want queued", msg)
		}
	}
	tc.PrintfLine("QUIT")
	tc.ReadResponse(221)

	want := "Subject: chunked\r\nMessage-ID: <chunked@test>\r\n\r\nfirst line\r\n.leading dot\r\nlast line"
	for _, box := range []struct{ addr, user, pass string }{
		{c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2"},
		{c.gmPOPAddr(), "usr@gmail.com", "pass"},
	} {
		msgs := waitMail(t, box.addr, box.user, box.pass, 1)
		if len(msgs) != 1 || !strings.Contains(msgs[0], want) {
			t.Errorf("%s got %q, want it to hold %q", box.user, msgs, want)
		}
	}
}

// TestCourseRelayLargeByBdat: a message over 1 MiB, submitted by DATA, is
// relayed from exmail.qq.com to gmail.com in BDAT chunks (gomta's server
// offers CHUNKING, its client uses it for large bodies) and arrives whole.
func TestCourseRelayLargeByBdat(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.extraArgs = []string{"-log-level", "debug"} // the receiving side logs each command
	c.start()
	var b strings.Builder
	for i := 0; b.Len() < 3<<19; i++ {
		fmt.Fprintf(&b, "line %d %s\r\n", i, strings.Repeat("z", i%700))
	}
	b.WriteString(".leading dot\r\nthe end")
	text := b.String()
	err := smtp.SendMail(c.qqSMTPAddr(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		message("usr1@mail.sustech.edu.cn", "usr@gmail.com", "large", text))
	if err != nil {
		t.Fatal(err)
	}
	msgs := waitMail(t, c.gmPOPAddr(), "usr@gmail.com", "pass", 1)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "\r\n\r\n"+text) {
		t.Errorf("the large message did not arrive whole (%d message(s))", len(msgs))
	}
	if log := c.gm.Log.String(); !strings.Contains(log, `"command":"BDAT `) || !strings.Contains(log, ` LAST"`) {
		t.Errorf("gmail.com's log shows no BDAT chunks from the relay")
	}
}
