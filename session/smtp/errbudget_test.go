package smtp

import (
	"testing"
)

// TestTemporaryRepliesCountAsErrors: 4xx replies count against MaxErrors as
// 5xx ones do (serve.Errors), so that a client cannot keep a session busy
// with commands that fail temporarily.
func TestTemporaryRepliesCountAsErrors(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{rcptHook: func(string) error {
		return &Reply{Code: 452, Enhanced: "4.3.1", Text: "insufficient system storage"}
	}}
	_, addr := startServer(t, Config{MaxErrors: 3}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("250 2.1.0 sender OK")
	cl.send("RCPT TO:<b@example.org>")
	cl.expect("452 4.3.1 insufficient system storage")
	cl.send("RCPT TO:<c@example.org>")
	cl.expect("452 4.3.1 insufficient system storage")
	cl.send("FOO")
	cl.expect("500 5.5.2 command not recognized")
	cl.expect("421 4.7.0 too many errors, closing connection")
	cl.expectClosed()
}

// TestRecipientLimitIsNotAnError: the 452 of the recipient limit is flow
// control (RFC 5321 §4.5.3.1.10: the client sends the rest later), so a
// transaction with more recipients over the limit than MaxErrors still ends
// with its message taken.
func TestRecipientLimitIsNotAnError(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{MaxRcpts: 2, MaxErrors: 2}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>")
	cl.expect("250 2.1.0 sender OK")
	for i, rcpt := range []string{"b", "c", "d", "e", "f"} {
		cl.send("RCPT TO:<" + rcpt + "@example.org>")
		if i < 2 {
			cl.expect("250 2.1.5 recipient OK")
		} else {
			cl.expect("452 4.5.3 too many recipients")
		}
	}
	cl.send("DATA")
	cl.expect("354 end data with <CR><LF>.<CR><LF>")
	cl.write("hi\r\n.\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0001")
}
