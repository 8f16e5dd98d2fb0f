package pop3_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
)

// TestMessageLines: RETR and TOP log "message retrieved" with the command,
// the message's msg_id and the octets sent; DELE "message marked deleted";
// QUIT "message deleted" once per expunged message; every line after the
// login names the session and the user.
func TestMessageLines(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	ts := start(t, newBackend(), pop3.Config{Logger: zap.New(core)})
	c := dial(t, ts.addr)
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS secret", "+OK maildrop has 2 messages ("+itoa(len(msg1)+len(msg2))+" octets)")
	c.cmd("RETR 2", append([]string{"+OK " + itoa(len(msg2)) + " octets"}, append(stuffed(msg2), ".")...)...)
	c.cmd("TOP 1 0", "+OK top of message follows", "From: a@example.org", "Subject: one", "", ".")
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.cmd("QUIT", "+OK "+host+" signing off (1 messages left)")
	c.expectEOF()
	mtatest.Eventually(t, "the session's end line", func() bool { return logs.FilterMessage("session end").Len() == 1 })

	var got []string
	for _, e := range logs.All() {
		f := e.ContextMap()
		if e.Message == "session end" || e.Message == "login" || e.Message == "message retrieved" ||
			e.Message == "message marked deleted" || e.Message == "message deleted" {
			if f["user"] != "alice" || f["session_id"] == nil || f["proto"] != "pop3" {
				t.Errorf("%s: fields %v, want user, session_id and proto", e.Message, f)
			}
		}
		switch e.Message {
		case "message retrieved":
			got = append(got, e.Message+" "+f["command"].(string)+" "+f["msg_id"].(string))
			if f["bytes"] == nil || f["bytes"].(int64) <= 0 {
				t.Errorf("%s: bytes %v", e.Message, f["bytes"])
			}
		case "message marked deleted", "message deleted":
			got = append(got, e.Message+" "+f["msg_id"].(string))
		}
	}
	want := []string{"message retrieved RETR msg-0002", "message retrieved TOP msg-0001",
		"message marked deleted msg-0002", "message deleted msg-0002"}
	if len(got) != len(want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
}
