package pop3_test

import (
	"testing"

	"gomta/session/pop3"
)

// TestReconfigure: a session keeps the error budget it started with (2
// here); one that starts after Reconfigure has the new one, here none.
func TestReconfigure(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{MaxErrors: 2})
	before := dial(t, ts.addr)
	ts.srv.Reconfigure(pop3.Config{MaxErrors: -1})
	after := dial(t, ts.addr)
	for range 15 {
		after.cmd("BOGUS", "-ERR unknown command")
	}
	after.cmd("QUIT", "+OK "+host+" signing off")
	before.cmd("BOGUS", "-ERR unknown command")
	before.cmd("BOGUS", "-ERR unknown command", "-ERR too many errors")
	before.expectEOF()
}
