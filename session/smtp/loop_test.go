package smtp

import (
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/reply"
)

// receivedFields returns n Received fields, each folded over two lines whose
// continuation also says "Received:" (it must not count) and long enough
// that the header section spans many reads of the session's reader.
func receivedFields(n int, name string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s from hop%d.example (hop%d.example [192.0.2.1]) by mx.example with ESMTP id %s;\r\n"+
			"\tReceived: Mon, 1 Jan 2024 00:00:00 +0000\r\n", name, i, i, strings.Repeat("x", 200))
	}
	return b.String()
}

// TestMailLoop sends messages with Go's net/smtp over one connection: a
// message with more Received fields than the limit (RFC 5321 §6.3), counting
// the one the server adds, is refused with 554 5.4.6 at the end of DATA,
// nothing is queued, the refusal is logged, and the session stays in step for
// the next message. Received fields that are not in the header section, or
// that only look alike, never count.
func TestMailLoop(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	be := &fakeBackend{}
	_, addr := startServer(t, Config{Logger: zap.New(core)}, be)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const refused = "5.4.6 too many Received header fields: mail loop detected"
	tests := []struct {
		name, msg string
		refused   bool
	}{
		// 99 + the server's own = 100: accepted.
		{"99 received", receivedFields(99, "Received:") + "Subject: s\r\n\r\nhi\r\n", false},
		{"100 received", receivedFields(100, "Received:") + "Subject: s\r\n\r\nhi\r\n", true},
		{"100 in any case, space before colon", receivedFields(50, "RECEIVED:") + receivedFields(50, "received :"), true},
		{"after the header section", "Subject: s\r\n\r\n" + receivedFields(200, "Received:"), false},
		{"after a line that is no field", "Subject: s\r\nno field here\r\n" + receivedFields(200, "Received:"), false},
		{"look-alike names", receivedFields(100, "X-Received:") + receivedFields(100, "Received-SPF:") +
			receivedFields(100, "Receivedx:"), false},
	}
	accepted := 0
	for _, tc := range tests {
		if err := c.Mail("a@example.org"); err != nil {
			t.Fatalf("%s: MAIL: %v", tc.name, err)
		}
		if err := c.Rcpt("b@example.org"); err != nil {
			t.Fatalf("%s: RCPT: %v", tc.name, err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatalf("%s: DATA: %v", tc.name, err)
		}
		if _, err := w.Write([]byte(tc.msg)); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		err = w.Close() // returns with the reply to the end of data
		var te *textproto.Error
		switch {
		case tc.refused && (!errors.As(err, &te) || te.Code != reply.CodeTxFailed || te.Msg != refused):
			t.Errorf("%s: end of data: %v, want 554 %q", tc.name, err, refused)
		case !tc.refused && err != nil:
			t.Errorf("%s: end of data: %v", tc.name, err)
		case !tc.refused:
			accepted++
		}
		// The reply came after the draft was committed or aborted.
		if com, _ := be.counts(); com != accepted {
			t.Errorf("%s: %d messages queued, want %d", tc.name, com, accepted)
		}
	}
	if err := c.Noop(); err != nil {
		t.Fatalf("NOOP after the messages: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if com, ab := be.counts(); com != 4 || ab != 2 {
		t.Errorf("committed %d, aborted %d, want 4 and 2", com, ab)
	}
	loops := logs.FilterMessage("mail loop detected").All()
	if len(loops) != 2 {
		t.Fatalf("%d loop lines logged, want 2", len(loops))
	}
	for i, want := range []int64{101, 101} {
		f := loops[i].ContextMap()
		if f["count"] != want || f["msg_id"] != fmt.Sprintf("MSG%04d", i+2) {
			t.Errorf("loop line %d: %v, want count %d", i, f, want)
		}
	}
}

// TestMailLoopLimit checks that Config.MaxReceived sets the limit.
func TestMailLoopLimit(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{MaxReceived: 3}, be)
	cl := dialReady(t, addr)
	for _, tc := range []struct {
		n    int
		want string
	}{
		{2, "250 2.0.0 OK queued as MSG0001"},
		{3, "554 5.4.6 too many Received header fields: mail loop detected"},
	} {
		cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
		cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
		cl.write(strings.Repeat("Received: x\r\n", tc.n) + "\r\nbody\r\n.\r\n")
		cl.expect(tc.want)
	}
}
