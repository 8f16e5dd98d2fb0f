package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeLog writes lines to a file of its own and returns its path.
func writeLog(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	idA = "06h5a1q0aaaaaa000001"
	idB = "06h5a1q0bbbbbb000002"
	idC = "06h5a1q0cccccc000003"
)

func accepted(ts, host, id, up, messageID string) string {
	l := `{"level":"info","ts":"` + ts + `","msg":"message accepted","host":"` + host + `","proto":"smtp","remote":"127.0.0.1:1","msg_id":"` + id +
		`","mail_from":"a@x.test","rcpt":["b@y.test"],"bytes":10`
	if up != "" {
		l += `,"upstream_msg_id":"` + up + `"`
	}
	if messageID != "" {
		l += `,"message_id":"` + messageID + `"`
	}
	return l + "}"
}

func relayed(ts, host, id, reply string) string {
	return `{"level":"info","ts":"` + ts + `","msg":"relay delivered","host":"` + host + `","proto":"relay","msg_id":"` + id +
		`","rcpt":"b@y.test","domain":"y.test","mx":"mx.y.test","mx_addr":"127.0.0.1:25","remote_reply":"` + reply + `","smtp_code":250,"attempt":1}`
}

// TestLinkNamedBySenderOnlyIsNotConfirmed: a far side that answers "queued
// as Z" for a message Z that never claimed this one as its upstream is
// shown as named by the sender only, not as a confirmed link.
func TestLinkNamedBySenderOnlyIsNotConfirmed(t *testing.T) {
	f := writeLog(t, "a.log",
		accepted("2026-12-06T09:00:00Z", "h1", idA, "", ""),
		relayed("2026-12-06T09:00:01Z", "h1", idA, "250 2.0.0 OK queued as "+idB),
		accepted("2026-12-06T09:00:02Z", "h2", idB, "", ""))
	out, code := mtalog(t, "trace", idA, f)
	if code != 0 || strings.Contains(out, "(confirmed link)") || !strings.Contains(out, "named by the sender only") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestHopsFoundWhateverTheLineOrder: three hops whose files are not in one
// time order (the receiving hosts' clocks behind the sender's) are all
// followed, each link confirmed.
func TestHopsFoundWhateverTheLineOrder(t *testing.T) {
	h1 := writeLog(t, "h1.log",
		accepted("2026-12-06T09:00:02Z", "h1", idA, "", ""),
		relayed("2026-12-06T09:00:03Z", "h1", idA, "250 2.0.0 OK queued as "+idB))
	h2 := writeLog(t, "h2.log",
		accepted("2026-12-06T09:00:01Z", "h2", idB, idA, ""), // clock 2 s behind
		relayed("2026-12-06T09:00:01.5Z", "h2", idB, "250 2.0.0 OK queued as "+idC))
	h3 := writeLog(t, "h3.log",
		accepted("2026-12-06T09:00:00Z", "h3", idC, idB, "")) // further behind
	out, code := mtalog(t, "trace", idA, h1, h2, h3)
	if code != 0 || strings.Count(out, "(confirmed link)") != 2 || !strings.Contains(out, idC) {
		t.Fatalf("exit %d, want every hop with two confirmed links:\n%s", code, out)
	}
}

// TestTraceTextEscapesTerminalControls: what a client or a far server wrote
// (a Message-ID, a reply) never reaches the terminal as escape sequences or
// line breaks.
func TestTraceTextEscapesTerminalControls(t *testing.T) {
	f := writeLog(t, "a.log",
		accepted("2026-12-06T09:00:00Z", "h1", idA, "", `<x\u001b[2K\rFAKE LINE\u202e@y>`),
		relayed("2026-12-06T09:00:01Z", "h1", idA, `250 ok\r\n2026-12-06 FAKE`))
	out, _ := mtalog(t, "trace", idA, f)
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\n2026-12-06 FAKE"} {
		if strings.Contains(out, bad) {
			t.Errorf("trace output carries %q raw:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, `\x1b[2K`) {
		t.Errorf("the escape is not shown escaped:\n%s", out)
	}
}
