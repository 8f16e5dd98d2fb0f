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
