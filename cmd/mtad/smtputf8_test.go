package main

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/smtpclient/smtpclienttest"
)

// utf8Site is one mtad running the course's two hosts with UTF-8 accounts
// on exmail.qq.com (张三@mail.sustech.edu.cn, and a whole IDN domain,
// 用户@例子.中国), and two fake next hops: one that offers SMTPUTF8
// (utf8.test) and one that does not (ascii.test).
type utf8Site struct {
	qqSMTP, qqPOP, gmPOP string
	withUTF8, without    *smtpclienttest.Server
	d                    *mtatest.Daemon
}

func startUTF8Site(t *testing.T) *utf8Site {
	t.Helper()
	s := &utf8Site{
		withUTF8: smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "8BITMIME", "SMTPUTF8"}}),
		without:  smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "8BITMIME"}}),
	}
	p := mtatest.FreePorts(t, 4)
	cfg := fmt.Sprintf(`[server]
"exmail.qq.com" = { smtp = %d, pop = %d }
"gmail.com" = { smtp = %d, pop = %d }
[accounts."exmail.qq.com"]
"usr1@mail.sustech.edu.cn" = "pass1"
"张三@mail.sustech.edu.cn" = "密码"
"用户@例子.中国" = "pw"
[accounts."gmail.com"]
"usr@gmail.com" = "pass"
[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."
"utf8.test." = "mx.utf8.test."
"ascii.test." = "mx.ascii.test."
[P]
"mxbiz1.qq.com." = "%d"
"gmail-smtp-in.l.google.com." = "%d"
"mx.utf8.test." = "%s"
"mx.ascii.test." = "%s"
`, p[0], p[1], p[2], p[3], p[0], p[2], s.withUTF8.Port(), s.without.Port())
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.d = mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	s.qqSMTP, s.qqPOP, s.gmPOP = mtatest.Addr(p[0]), mtatest.Addr(p[1]), mtatest.Addr(p[3])
	return s
}

// pySendUTF8 submits with Python's smtplib and the SMTPUTF8 option:
// argv: addr, from, rcpt, message; an optional UTF-8 user and password
// authenticate first with AUTH PLAIN (RFC 4616 allows a UTF-8 authcid;
// smtplib's login() would encode it as ASCII, so the command is sent as is).
const pySendUTF8 = `
import base64, smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port), timeout=10) as s:
    s.ehlo("py.example")
    assert s.has_extn("smtputf8"), s.esmtp_features
    if len(sys.argv) > 5:
        resp = base64.b64encode(b"\0" + sys.argv[5].encode() + b"\0" + sys.argv[6].encode()).decode()
        code, text = s.docmd("AUTH", "PLAIN " + resp)
        assert code == 235, (code, text)
    print(s.sendmail(sys.argv[2], [sys.argv[3]], sys.argv[4].encode(), mail_options=["SMTPUTF8"]))
`

// pyReadUTF8 reads every message of a mailbox with Python's poplib after
// UTF8 (RFC 6856), and prints them, as sent, separated by a NUL line.
const pyReadUTF8 = `
import poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=10)
assert "UTF8" in p.capa(), p.capa()
p.utf8()
p.user(sys.argv[2])
p.pass_(sys.argv[3])
for i in range(1, p.stat()[0] + 1):
    resp, lines, octets = p.retr(i)
    sys.stdout.buffer.write(b"\r\n".join(lines) + b"\r\n\0\n")
p.quit()
`

func popUTF8(t *testing.T, addr, user, pass string, n int) []string {
	t.Helper()
	mtatest.WaitMailbox(t, addr, user, pass, n)
	out := python(t, pyReadUTF8, addr, user, pass)
	msgs := strings.Split(out, "\x00\n")
	return msgs[:len(msgs)-1]
}

// TestSMTPUTF8PythonRoundTrip: smtplib with SMTPUTF8 to a UTF-8 account,
// read back with poplib after UTF8, byte for byte under our Received field.
func TestSMTPUTF8PythonRoundTrip(t *testing.T) {
	t.Parallel()
	s := startUTF8Site(t)
	const msg = "From: usr1@mail.sustech.edu.cn\r\nTo: 张三@mail.sustech.edu.cn\r\nSubject: 你好，张三\r\n\r\n正文：一切顺利。\r\n"
	if out := python(t, pySendUTF8, s.qqSMTP, "usr1@mail.sustech.edu.cn", "张三@mail.sustech.edu.cn", msg); out != "{}\n" {
		t.Fatalf("smtplib: %q", out)
	}
	got := popUTF8(t, s.qqPOP, "张三@mail.sustech.edu.cn", "密码", 1)[0]
	hdr, rest, ok := strings.Cut(got, "\r\nFrom: ")
	if !ok || "From: "+rest != msg {
		t.Errorf("message %q, want it to end with %q", got, msg)
	}
	if !strings.Contains(hdr, "with UTF8SMTP id ") || !strings.Contains(hdr, "for <张三@mail.sustech.edu.cn>") {
		t.Errorf("Received field %q", hdr)
	}
}

// TestSMTPUTF8RequiredForUTF8Addresses: the same UTF-8 recipient without
// SMTPUTF8 is refused with 553 5.6.7 (RFC 6531 §3.5), by a raw client.
func TestSMTPUTF8RequiredForUTF8Addresses(t *testing.T) {
	t.Parallel()
	s := startUTF8Site(t)
	nc, err := net.DialTimeout("tcp", s.qqSMTP, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := textproto.NewConn(nc)
	step := func(cmd string, want int) string {
		t.Helper()
		if cmd != "" {
			if err := c.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		_, text, err := c.ReadResponse(want)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return text
	}
	step("", 220)
	step("EHLO raw.example", 250)
	step("MAIL FROM:<usr1@mail.sustech.edu.cn>", 250)
	if got := step("RCPT TO:<张三@mail.sustech.edu.cn>", 553); !strings.HasPrefix(got, "5.6.7 ") {
		t.Errorf("RCPT without SMTPUTF8: %q", got)
	}
	step("RSET", 250)
	if got := step("MAIL FROM:<张三@mail.sustech.edu.cn>", 553); !strings.HasPrefix(got, "5.6.7 ") {
		t.Errorf("MAIL without SMTPUTF8: %q", got)
	}
	step("MAIL FROM:<usr1@mail.sustech.edu.cn> SMTPUTF8 BODY=8BITMIME", 250)
	step("RCPT TO:<张三@mail.sustech.edu.cn>", 250)
	step("QUIT", 221)
}

// TestSMTPUTF8IDNAEquivalence: a recipient written with U-labels and with
// A-labels lands in the one mailbox of 用户@例子.中国.
func TestSMTPUTF8IDNAEquivalence(t *testing.T) {
	t.Parallel()
	s := startUTF8Site(t)
	for _, rcpt := range []string{"用户@例子.中国", "用户@xn--fsqu00a.xn--fiqs8s"} {
		msg := "From: usr1@mail.sustech.edu.cn\r\nTo: " + rcpt + "\r\nSubject: idna\r\n\r\n" + rcpt + "\r\n"
		if out := python(t, pySendUTF8, s.qqSMTP, "usr1@mail.sustech.edu.cn", rcpt, msg); out != "{}\n" {
			t.Fatalf("smtplib to %s: %q", rcpt, out)
		}
	}
	msgs := popUTF8(t, s.qqPOP, "用户@xn--fsqu00a.xn--fiqs8s", "pw", 2)
	body := strings.Join(msgs, "")
	for _, rcpt := range []string{"\r\n\r\n用户@例子.中国\r\n", "\r\n\r\n用户@xn--fsqu00a.xn--fiqs8s\r\n"} {
		if !strings.Contains(body, rcpt) {
			t.Errorf("mailbox lacks the message to %q:\n%s", rcpt, body)
		}
	}
}

// TestSMTPUTF8AuthAndRelay: 张三 authenticates with a UTF-8 name (AUTH PLAIN),
// sends to gmail.com (relayed gomta to gomta with SMTPUTF8) and to a hop
// that offers SMTPUTF8 (its MAIL carries the parameter); a message to a hop
// without it comes back to the sender as a 5.6.7 bounce.
func TestSMTPUTF8AuthAndRelay(t *testing.T) {
	t.Parallel()
	s := startUTF8Site(t)
	const from = "张三@mail.sustech.edu.cn"
	for _, rcpt := range []string{"usr@gmail.com", "李四@utf8.test", "李四@ascii.test"} {
		msg := "From: " + from + "\r\nTo: " + rcpt + "\r\nSubject: 问候\r\n\r\n你好\r\n"
		if out := python(t, pySendUTF8, s.qqSMTP, from, rcpt, msg, from, "密码"); out != "{}\n" {
			t.Fatalf("smtplib to %s: %q", rcpt, out)
		}
	}
	relayed := popUTF8(t, s.gmPOP, "usr@gmail.com", "pass", 1)[0]
	if strings.Count(relayed, "with UTF8SMTP") != 2 || !strings.Contains(relayed, "Subject: 问候\r\n\r\n你好\r\n") {
		t.Errorf("relayed to gmail.com:\n%s", relayed)
	}
	mtatest.Eventually(t, "the SMTPUTF8 hop got the message", func() bool { return len(s.withUTF8.Messages()) == 1 })
	if got := mailLine(s.withUTF8); got != "MAIL FROM:<"+from+"> BODY=8BITMIME SMTPUTF8" {
		t.Errorf("MAIL at the SMTPUTF8 hop: %q", got)
	}
	bounce := popUTF8(t, s.qqPOP, from, "密码", 1)[0]
	for _, want := range []string{"multipart/report", "5.6.7", "SMTPUTF8 is required", "李四@ascii.test", "Subject: 问候"} {
		if !strings.Contains(bounce, want) {
			t.Errorf("bounce lacks %q:\n%s", want, bounce)
		}
	}
	if mailLine(s.without) != "" || len(s.without.Messages()) != 0 {
		t.Errorf("the hop without SMTPUTF8 got %q", s.without.Lines())
	}
}

// mailLine is the first MAIL command a fake hop received, "" when none.
func mailLine(srv *smtpclienttest.Server) string {
	for _, l := range srv.Lines() {
		if strings.HasPrefix(l, "MAIL ") {
			return l
		}
	}
	return ""
}
