package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// TestMain builds mtad once for the end-to-end test and removes it after.
func TestMain(m *testing.M) { os.Exit(mtatest.WithMtad(m).Run()) }

// courseRun runs one mtad with the course's two hosts through a day in
// small: usr1@mail.sustech.edu.cn writes to usr@gmail.com and to an unknown
// gmail user (relayed across; the unknown one bounces), someone forges a
// Received header naming that message in a second message straight to
// gmail.com, and usr@gmail.com reads the first over POP3 (RETR, DELE,
// QUIT). It returns the log file and the first host's msg_id.
func courseRun(t *testing.T) (logFile, firstID string) {
	t.Helper()
	path, p := mtatest.Course(t, `trusted_networks = ["127.0.0.1/32"]`)
	dir := t.TempDir()
	d := mtatest.StartDaemon(t, []string{"-config", path, "-data", filepath.Join(dir, "data")}, p...)
	qq, gm, gmPOP, qqPOP := mtatest.Addr(p[0]), mtatest.Addr(p[2]), mtatest.Addr(p[3]), mtatest.Addr(p[1])

	err := smtp.SendMail(qq, nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com", "nobody@gmail.com"},
		[]byte("From: usr1@mail.sustech.edu.cn\r\nTo: usr@gmail.com\r\nSubject: trace me\r\n"+
			"Message-ID: <e2e-trace@mail.sustech.edu.cn>\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, `"msg":"message accepted"`)
	m := regexp.MustCompile(`"msg":"message accepted"[^\n]*"host":"exmail.qq.com"[^\n]*`).FindString(d.Log.String())
	if m == "" {
		m = regexp.MustCompile(`[^\n]*"host":"exmail.qq.com"[^\n]*"msg":"message accepted"[^\n]*`).FindString(d.Log.String())
	}
	firstID = regexp.MustCompile(`"msg_id":"([0-9a-v]{20})"`).FindStringSubmatch(m)[1]

	// The relayed message is in usr's mailbox (and so first in it) before
	// anyone writes a Received header claiming it.
	mtatest.WaitMailbox(t, gmPOP, "usr@gmail.com", "pass", 1)
	// Anyone may write a Received header: this one claims the first message.
	forged := "Received: from mx.example by exmail.qq.com (gomta) with ESMTP id " + firstID +
		";\r\n\tSun, 6 Dec 2026 03:00:00 +0000\r\nFrom: mallory@example.net\r\nSubject: forged\r\n\r\nhi\r\n"
	if err := smtp.SendMail(gm, nil, "mallory@example.net", []string{"usr@gmail.com"}, []byte(forged)); err != nil {
		t.Fatal(err)
	}
	mtatest.WaitMailbox(t, gmPOP, "usr@gmail.com", "pass", 2)
	mtatest.WaitMailbox(t, qqPOP, "usr1@mail.sustech.edu.cn", "pass1", 1) // the bounce
	mtatest.RetrDele(t, gmPOP, "usr@gmail.com", "pass")
	d.WaitLog(t, `"msg":"message deleted"`)
	d.Stop(t)

	logFile = filepath.Join(dir, "mtad.log")
	if err := os.WriteFile(logFile, []byte(d.Log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return logFile, firstID
}

// mtalog runs the command and returns its stdout and exit status.
func mtalog(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	if code == exitUsage {
		t.Fatalf("mtalog %v: usage error: %s", args, errb.String())
	}
	return out.String(), code
}

// inOrder checks that each of steps occurs in out, each after the last.
func inOrder(t *testing.T, what, out string, steps ...string) {
	t.Helper()
	rest := out
	for _, s := range steps {
		i := strings.Index(rest, s)
		if i < 0 {
			t.Errorf("%s: %q missing (or out of order) in:\n%s", what, s, out)
			return
		}
		rest = rest[i+len(s):]
	}
}

// TestTraceAndSummaryOfARealRun is issue 12's end-to-end test: mtalog over
// one real run's log.
func TestTraceAndSummaryOfARealRun(t *testing.T) {
	t.Parallel()
	file, first := courseRun(t)

	// The same timeline by the first host's msg_id, by Message-ID and by
	// recipient: every step, in order, with a confirmed link.
	steps := []string{"exmail.qq.com", "accepted", "gmail.com", "accepted", "(confirmed link)",
		"delivered", "usr@gmail.com", "retrieved", "RETR by usr@gmail.com", "marked deleted", "deleted"}
	for _, args := range [][]string{{first}, {"-message-id", "<e2e-trace@mail.sustech.edu.cn>"}, {"-to", "usr@gmail.com"}} {
		out, code := mtalog(t, append(append([]string{"trace"}, args...), file)...)
		if code != 0 {
			t.Fatalf("trace %v: exit %d\n%s", args, code, out)
		}
		inOrder(t, fmt.Sprint("trace ", args), out, steps...)
		// The confirmed hop is the one read and deleted over POP3; the
		// forged message is the claimed one.
		hop := func(marker string) string {
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 4 && strings.Contains(l, marker) {
					return f[3]
				}
			}
			return ""
		}
		if c, r, d := hop("(confirmed link)"), hop("retrieved"), hop("expunged"); c == "" || r != c || d != c || hop("(claimed link)") == c {
			t.Errorf("trace %v: confirmed hop %q, retrieved %q, deleted %q, claimed %q:\n%s", args, c, r, d, hop("(claimed link)"), out)
		}
		for _, want := range []string{"relayed", "queued as", "bounced", "nobody@gmail.com", "bounce "} {
			if !strings.Contains(out, want) {
				t.Errorf("trace %v lacks %q:\n%s", args, want, out)
			}
		}
	}
	// The forged header names the first message: only a claimed link.
	out, _ := mtalog(t, "trace", first, file)
	if !strings.Contains(out, "(claimed link)") {
		t.Errorf("the forged Received header is not shown as a claimed link:\n%s", out)
	}
	if _, code := mtalog(t, "trace", "-to", "nobody-at-all@example.org", file); code != 1 {
		t.Errorf("trace of nothing: exit %d, want 1", code)
	}

	// The counts match what was sent: 3 messages accepted over SMTP (the
	// first on each host, the forged one), one recipient relayed, one
	// bounced with one DSN, and 3 local deliveries (the relayed message, the
	// forged one, the bounce).
	out, code := mtalog(t, "summary", "-json", file)
	var s Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != 0 {
		t.Fatalf("summary -json: exit %d, %v\n%s", code, err, out)
	}
	got := map[string]int64{"received": s.Received, "relayed": s.Relayed, "bounced": s.Bounced,
		"bounces_sent": s.BouncesSent, "delivered_local": s.DeliveredLocal}
	want := map[string]int64{"received": 3, "relayed": 1, "bounced": 1, "bounces_sent": 1, "delivered_local": 3}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("summary %s = %d, want %d", k, got[k], v)
		}
	}

	html := filepath.Join(t.TempDir(), "report.html")
	if _, code := mtalog(t, "summary", "-html", html, file); code != 0 {
		t.Fatalf("summary -html: exit %d", code)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict, dec.Entity = true, xml.HTMLEntity
	svgs := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the HTML report does not parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "svg" {
			svgs++
		}
	}
	if svgs < 3 {
		t.Errorf("the HTML report has %d charts, want 3", svgs)
	}
}
