package main

import (
	"encoding/json"
	"fmt"
	"net/smtp"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// bothCourseHosts starts one mtad with the course's two hosts and returns
// it with the SMTP address of exmail.qq.com and the POP3 address of
// gmail.com.
func bothCourseHosts(t *testing.T) (d *mtatest.Daemon, qqSMTP, gmPOP string) {
	t.Helper()
	path, p := mtatest.Course(t, `trusted_networks = ["127.0.0.1/32"]`)
	d = mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	return d, mtatest.Addr(p[0]), mtatest.Addr(p[3])
}

// TestMessageFollowedAcrossHosts sends usr1@mail.sustech.edu.cn → usr@gmail.com,
// relayed from exmail.qq.com to gmail.com, reads it over POP3 (RETR, DELE,
// QUIT), and checks that the log carries every line a message is followed
// by, with its fields, in order, and that the link between the hops is
// confirmable: the first host's relay delivered names, in remote_reply, the
// msg_id under which the second accepted it, whose upstream_msg_id is the
// first host's msg_id.
func TestMessageFollowedAcrossHosts(t *testing.T) {
	t.Parallel()
	d, qqSMTP, gmPOP := bothCourseHosts(t)
	const messageID = "<follow-me.1@mail.sustech.edu.cn>"
	err := smtp.SendMail(qqSMTP, nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		[]byte("From: usr1@mail.sustech.edu.cn\r\nTo: usr@gmail.com\r\nSubject: follow me\r\nMessage-ID: "+messageID+"\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	mtatest.WaitMailbox(t, gmPOP, "usr@gmail.com", "pass", 1)
	mtatest.RetrDele(t, gmPOP, "usr@gmail.com", "pass")
	d.WaitLog(t, `"msg":"message deleted"`)
	d.WaitLog(t, `"msg":"session end","proto":"pop3"`)
	d.Stop(t)

	log := parseLog(t, d.Log.String())
	qqAcc := log.one(t, "message accepted", "exmail.qq.com")
	first := qqAcc.str("msg_id")
	wantFields(t, qqAcc, map[string]any{"proto": "smtp", "mail_from": "usr1@mail.sustech.edu.cn", "message_id": messageID,
		"tls": false, "rcpt": []any{"usr@gmail.com"}}, "session_id", "remote", "bytes")
	for _, k := range []string{"upstream_msg_id", "auth_user"} {
		if _, ok := qqAcc.l[k]; ok {
			t.Errorf("first hop's acceptance has %s: %v", k, qqAcc.l)
		}
	}
	relayed := log.one(t, "relay delivered", "exmail.qq.com")
	wantFields(t, relayed, map[string]any{"proto": "relay", "msg_id": first, "rcpt": "usr@gmail.com", "domain": "gmail.com",
		"mx": "gmail-smtp-in.l.google.com", "smtp_code": float64(250), "enhanced": "2.0.0", "attempt": float64(1)},
		"mx_addr", "remote_reply", "duration_ms")
	done := log.one(t, "message done", "exmail.qq.com")
	wantFields(t, done, map[string]any{"msg_id": first, "attempt": float64(1)}, "duration_ms")

	gmAcc := log.one(t, "message accepted", "gmail.com")
	second := gmAcc.str("msg_id")
	wantFields(t, gmAcc, map[string]any{"proto": "smtp", "upstream_msg_id": first, "message_id": messageID,
		"mail_from": "usr1@mail.sustech.edu.cn", "rcpt": []any{"usr@gmail.com"}})
	// The link is confirmed: the first hop's reply names the second's msg_id.
	if want := "250 2.0.0 OK queued as " + second; relayed.str("remote_reply") != want {
		t.Errorf("remote_reply %q, want %q", relayed.str("remote_reply"), want)
	}
	if !strings.HasPrefix(relayed.str("mx_addr"), "127.0.0.1:") || !strings.HasPrefix(gmAcc.str("remote"), "127.0.0.1:") {
		t.Errorf("mx_addr %q, remote %q", relayed.str("mx_addr"), gmAcc.str("remote"))
	}
	delivered := log.one(t, "message delivered", "gmail.com")
	wantFields(t, delivered, map[string]any{"proto": "mailbox", "level": "info", "msg_id": second, "user": "usr@gmail.com",
		"rcpt": "usr@gmail.com"})
	// A Maildir delivery names its file; a jetstream one its stream sequence.
	if mtatest.Backend() == "local" {
		if f := delivered.str("file"); !strings.Contains(f, "R"+second+".") || !strings.Contains(f, ",S=") {
			t.Errorf("file %q does not carry the msg_id and size", f)
		}
	} else if _, ok := delivered.l["seq"]; !ok {
		t.Errorf("jetstream delivery without its seq: %v", delivered.l)
	}
	retr := log.one(t, "message retrieved", "gmail.com")
	wantFields(t, retr, map[string]any{"proto": "pop3", "command": "RETR", "msg_id": second, "user": "usr@gmail.com"},
		"session_id", "bytes")
	marked := log.one(t, "message marked deleted", "gmail.com")
	deleted := log.one(t, "message deleted", "gmail.com")
	for _, l := range []logRec{marked, deleted} {
		wantFields(t, l, map[string]any{"proto": "pop3", "msg_id": second, "user": "usr@gmail.com",
			"session_id": retr.str("session_id")})
	}
	// In order, on each host and from one host to the next. (The queue
	// hands a message to the workers inside Commit, before the session
	// writes its acceptance line, so a fast delivery may be logged just
	// before it: that pair is not ordered here; mtalog takes either order.)
	for _, pair := range [][2]logRec{{qqAcc, gmAcc}, {relayed, done}, {gmAcc, retr},
		{delivered, retr}, {retr, marked}, {marked, deleted}} {
		if pair[0].n >= pair[1].n {
			t.Errorf("%q (line %d) is not before %q (line %d)", pair[0].str("msg"), pair[0].n, pair[1].str("msg"), pair[1].n)
		}
	}
}

// logRec is one JSON log line and its place in the log.
type logRec struct {
	l logLine
	n int
}

func (r logRec) str(k string) string { return r.l.str(k) }

type parsedLog []logRec

func parseLog(t *testing.T, s string) parsedLog {
	t.Helper()
	var out parsedLog
	for i, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, line)
		}
		out = append(out, logRec{l: l, n: i})
	}
	return out
}

// one is the only line with msg on host; the test fails without it.
func (p parsedLog) one(t *testing.T, msg, host string) logRec {
	t.Helper()
	var found []logRec
	for _, r := range p {
		if r.str("msg") == msg && r.str("host") == host {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q lines of %s, want 1: %v", len(found), msg, host, found)
	}
	return found[0]
}

// wantFields checks r's fields against want and that the fields present
// are there.
func wantFields(t *testing.T, r logRec, want map[string]any, present ...string) {
	t.Helper()
	for k, v := range want {
		if got := fmt.Sprint(r.l[k]); got != fmt.Sprint(v) {
			t.Errorf("%s: %s = %s, want %v (%v)", r.str("msg"), k, got, v, r.l)
		}
	}
	for _, k := range present {
		if _, ok := r.l[k]; !ok {
			t.Errorf("%s: no %s (%v)", r.str("msg"), k, r.l)
		}
	}
}
