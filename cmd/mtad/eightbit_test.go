package main

import (
	"fmt"
	"net/smtp"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/smtpclient/smtpclienttest"
)

// eightBitMtad runs one mtad (exmail.qq.com) whose mail for far.test goes
// to srv; it returns the daemon and its SMTP and POP3 addresses.
func eightBitMtad(t *testing.T, srv *smtpclienttest.Server) (d *mtatest.Daemon, smtpAddr, popAddr string) {
	t.Helper()
	p := mtatest.FreePorts(t, 2)
	cfg := fmt.Sprintf("[server]\n\"exmail.qq.com\" = { smtp = %d, pop = %d }\n"+
		"[accounts.\"exmail.qq.com\"]\n\"usr1@mail.sustech.edu.cn\" = \"pass1\"\n"+
		"[MX]\n\"mail.sustech.edu.cn.\" = \"mxbiz1.qq.com.\"\n\"far.test.\" = \"mx.far.test.\"\n"+
		"[P]\n\"mxbiz1.qq.com.\" = \"%d\"\n\"mx.far.test.\" = %q\n", p[0], p[1], p[0], srv.Port())
	path := filepath.Join(t.TempDir(), "config.toml")
	write(t, path, cfg)
	d = mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	return d, mtatest.Addr(p[0]), mtatest.Addr(p[1])
}

// bounceFor submits msg to ann@far.test and returns the bounce usr1 gets.
func bounceFor(t *testing.T, srv *smtpclienttest.Server, msg string) string {
	t.Helper()
	_, addr, pop := eightBitMtad(t, srv)
	if err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"ann@far.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	m := waitMail(t, pop, "usr1@mail.sustech.edu.cn", "pass1", 1)[0]
	if !strings.Contains(m, "multipart/report") || !strings.Contains(m, "ann@far.test") {
		t.Fatalf("not a bounce for ann@far.test:\n%s", m)
	}
	return m
}

// pyLegacy8bit submits a message with BODY=8BITMIME but without SMTPUTF8,
// as a client from before RFC 6531 sends raw 8-bit header fields (Go's
// net/smtp would declare SMTPUTF8, which the relay then requires of the
// next hop: 5.6.7); argv: host:port from to message.
const pyLegacy8bit = `
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port), timeout=10) as s:
    print(s.sendmail(sys.argv[2], [sys.argv[3]], sys.argv[4].encode(), mail_options=["BODY=8BITMIME"]))
`

// TestRelay8bitHeaderBounces563: an 8-bit message whose header cannot be
// made 7-bit (sent without SMTPUTF8), for a next MTA without 8BITMIME, is
// never sent there: the sender gets a bounce saying 5.6.3.
func TestRelay8bitHeaderBounces563(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	_, addr, pop := eightBitMtad(t, srv)
	if out := python(t, pyLegacy8bit, addr, "usr1@mail.sustech.edu.cn", "ann@far.test", "Subject: Gr\u00fc\u00dfe\r\n\r\nbody\r\n"); out != "{}\n" {
		t.Fatalf("smtplib: %q", out)
	}
	m := waitMail(t, pop, "usr1@mail.sustech.edu.cn", "pass1", 1)[0]
	if !strings.Contains(m, "5.6.3") || !strings.Contains(m, "conversion required but not supported") {
		t.Errorf("bounce lacks 5.6.3:\n%s", m)
	}
	if n := countLines(srv.Lines(), "MAIL"); n != 0 || len(srv.Messages()) != 0 {
		t.Errorf("sent to the next MTA anyway: %q", srv.Lines())
	}
}

// TestRelayOverHopSizeBounces534: a message larger than the next MTA's
// SIZE limit is bounced with 5.3.4 without MAIL or DATA sent there.
func TestRelayOverHopSizeBounces534(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "SIZE 100"}})
	m := bounceFor(t, srv, "Subject: big\r\n\r\n"+strings.Repeat("0123456789\r\n", 20))
	if !strings.Contains(m, "5.3.4") || !strings.Contains(m, "exceeds size limit 100") {
		t.Errorf("bounce lacks 5.3.4:\n%s", m)
	}
	if countLines(srv.Lines(), "MAIL") != 0 || countLines(srv.Lines(), "DATA") != 0 {
		t.Errorf("sent to the next MTA anyway: %q", srv.Lines())
	}
}

// TestRelayConverts8bitForHopWithout8BITMIME: an 8-bit text message
// reaches a next MTA without 8BITMIME re-encoded quoted-printable, with
// SIZE= of the original on MAIL, logged converted=8bit-to-qp.
func TestRelayConverts8bitForHopWithout8BITMIME(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "SIZE 1000000"}})
	d, addr, _ := eightBitMtad(t, srv)
	msg := "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n"
	if err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"ann@far.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	mtatest.Eventually(t, "the message at the next MTA", func() bool { return len(srv.Messages()) == 1 })
	raw := string(srv.Messages()[0].Raw)
	want := "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n.\r\n"
	if !strings.HasSuffix(raw, want) {
		t.Fatalf("at the next MTA:\n%q\nwant it to end with\n%q", raw, want)
	}
	for _, l := range srv.Lines() {
		if strings.HasPrefix(l, "MAIL") && (!strings.Contains(l, " SIZE=") || strings.Contains(l, "BODY=")) {
			t.Errorf("MAIL %q: want SIZE= and no BODY=", l)
		}
	}
	d.WaitLog(t, `"converted":"8bit-to-qp"`)
}
