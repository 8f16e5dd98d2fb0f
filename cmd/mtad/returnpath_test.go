package main

import (
	"encoding/json"
	"net/smtp"
	"strings"
	"testing"
)

// pyPOPSizes reads a mailbox with Python's poplib: STAT, LIST and every
// message as RETR gives it back (lines joined with CRLF, the final CRLF
// restored) with poplib's own octet count.
const pyPOPSizes = `
import json, poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=10)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
count, size = p.stat()
out = {"stat": [count, size], "list": [], "msgs": [], "octets": []}
for entry in p.list()[1]:
    out["list"].append(int(entry.split()[1]))
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    out["msgs"].append((b"\r\n".join(lines) + b"\r\n").decode("utf-8"))
    out["octets"].append(octets)
p.quit()
print(json.dumps(out))
`

type popSizes struct {
	Stat   [2]int
	List   []int
	Msgs   []string
	Octets []int
}

// popSized reads user's mailbox with pyPOPSizes once it holds n messages,
// and checks that STAT, LIST and RETR agree on every message's size.
func popSized(t *testing.T, addr, user, pass string, n int) popSizes {
	t.Helper()
	waitMail(t, addr, user, pass, n)
	var r popSizes
	if out := python(t, pyPOPSizes, addr, user, pass); json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("poplib output %q", out)
	}
	total := 0
	for i, m := range r.Msgs {
		if r.List[i] != len(m) || r.Octets[i] != len(m) {
			t.Errorf("%s message %d: LIST %d, RETR octets %d, RETR text %d bytes", user, i+1, r.List[i], r.Octets[i], len(m))
		}
		total += len(m)
	}
	if r.Stat[0] != len(r.Msgs) || r.Stat[1] != total {
		t.Errorf("%s: STAT %v, want [%d %d]", user, r.Stat, len(r.Msgs), total)
	}
	return r
}

// TestReturnPathAndDeliveredTo: local delivery prepends Return-Path (the
// envelope sender; <> for a bounce) and Delivered-To (the mailbox), then the
// message exactly as sent after our Received header; POP3 sizes count the
// two lines.
func TestReturnPathAndDeliveredTo(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	// The message's own Return-Path (a forged or an earlier hop's) stays.
	sent := "Return-Path: <old@elsewhere.test>\r\nFrom: a@x.test\r\nTo: usr1@mail.sustech.edu.cn\r\n" +
		"Subject: trace\r\n\r\nbody\r\n.leading dot\r\n"
	rcpts := []string{"usr1@mail.sustech.edu.cn", "USR2@mail.sustech.edu.cn"}
	if err := smtp.SendMail(c.qqSMTPAddr(), nil, "a@x.test", rcpts, []byte(sent)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	for _, u := range []struct{ user, pass string }{
		{"usr1@mail.sustech.edu.cn", "pass1"},
		{"usr2@mail.sustech.edu.cn", "pass2"},
	} {
		m := popSized(t, c.qqPOPAddr(), u.user, u.pass, 1).Msgs[0]
		want := "Return-Path: <a@x.test>\r\nDelivered-To: " + u.user + "\r\n"
		rest, ok := strings.CutPrefix(m, want)
		if !ok {
			t.Errorf("%s: message does not start with %q:\n%s", u.user, want, m)
			continue
		}
		received, ok := strings.CutSuffix(rest, sent)
		if !ok || !strings.HasPrefix(received, "Received: ") || strings.Count(received, "Received: ") != 1 {
			t.Errorf("%s: after the trace lines, want one Received header and the message as sent:\n%s", u.user, m)
		}
	}

	// A bounce: gmail.com has no such user, so exmail.qq.com bounces to
	// the local sender with the null reverse-path.
	if err := smtp.SendMail(c.qqSMTPAddr(), nil, "usr1@mail.sustech.edu.cn", []string{"nobody@gmail.com"},
		message("usr1@mail.sustech.edu.cn", "nobody@gmail.com", "bounceme", "hi")); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	msgs := popSized(t, c.qqPOPAddr(), "usr1@mail.sustech.edu.cn", "pass1", 2).Msgs
	bounce := msgs[1]
	if !strings.HasPrefix(bounce, "Return-Path: <>\r\nDelivered-To: usr1@mail.sustech.edu.cn\r\n") ||
		!strings.Contains(bounce, "multipart/report") {
		t.Errorf("bounce does not start with Return-Path: <> or is no report:\n%s", bounce)
	}
}
