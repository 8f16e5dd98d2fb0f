package smtpclient

import (
	"strings"
	"testing"

	"gomta/session/smtpclient/smtpclienttest"
)

// TestLastReplyNamesTheFarSidesID: after a Send, pipelined or step by step,
// LastReply is the final reply to the message, whose text names the far
// side's queue id; after a refused message, the refusal.
func TestLastReplyNamesTheFarSidesID(t *testing.T) {
	t.Parallel()
	for _, ext := range [][]string{{"PIPELINING"}, {"8BITMIME"}} {
		srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext,
			Body: func([]byte) string { return "250 2.0.0 OK queued as 06h4xyz" }})
		c := dial(t, srv, testOpts())
		if c.LastReply() == nil || c.LastReply().Code != 220 {
			t.Fatalf("%v: before any command: %v, want the greeting", ext, c.LastReply())
		}
		if _, err := c.Send("a@a.test", []string{"b@b.test"}, strings.NewReader("x\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := c.LastReply().Error(); got != "250 2.0.0 OK queued as 06h4xyz" {
			t.Errorf("%v: LastReply %q", ext, got)
		}
	}
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"},
		Body: func([]byte) string { return "554 5.7.1 spam" }})
	c := dial(t, srv, testOpts())
	if _, err := c.Send("a@a.test", []string{"b@b.test"}, strings.NewReader("x\r\n")); err == nil {
		t.Fatal("refused message reported sent")
	}
	if got := c.LastReply(); got == nil || got.Error() != "554 5.7.1 spam" {
		t.Errorf("after a refused message: %v, want the refusal", got)
	}
}
