package smtp

import (
	"strings"
	"testing"
)

// TestSMTPUTF8Replies checks that UTF-8 addresses are taken only in a
// transaction that declared SMTPUTF8 (RFC 6531 §3.4, §3.5), with the
// parameter alone or beside BODY=8BITMIME.
func TestSMTPUTF8Replies(t *testing.T) {
	t.Parallel()
	runScript(t, Config{MaxErrors: 100}, &fakeBackend{}, ehloScript+`
C: MAIL FROM:<用户@例子.中国>
S: 553 5.6.7 non-ASCII addresses not permitted for that sender without SMTPUTF8
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: RCPT TO:<张三@mail.sustech.edu.cn>
S: 553 5.6.7 non-ASCII addresses not permitted for that recipient without SMTPUTF8
C: RCPT TO:<b@例子.中国>
S: 553 5.6.7 non-ASCII addresses not permitted for that recipient without SMTPUTF8
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@example.org> SMTPUTF8=yes
S: 501 5.5.4 syntax error: SMTPUTF8 takes no value
C: MAIL FROM:<用户@例子.中国> SMTPUTF8 SMTPUTF8
S: 501 5.5.4 syntax error: repeated parameter SMTPUTF8
C: MAIL FROM:<用户@例子.中国> BODY=8BITMIME smtputf8
S: 250 2.1.0 sender OK
C: RCPT TO:<张三@mail.sustech.edu.cn>
S: 250 2.1.5 recipient OK
C: RCPT TO:<b@xn--fsqu00a.xn--fiqs8s>
S: 250 2.1.5 recipient OK
C: RCPT TO:<a@例子..中国>
S: 501 5.1.3 bad recipient address syntax: empty label in domain
C: RCPT TO:<a b@例子.中国>
S: 501 5.1.3 bad recipient address syntax: invalid character in local part
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 sender OK
C: RCPT TO:<张三@mail.sustech.edu.cn>
S: 553 5.6.7 non-ASCII addresses not permitted for that recipient without SMTPUTF8`)
}

// TestSMTPUTF8Received checks the "with" clause of an SMTPUTF8 transaction
// (RFC 6531 §4.3) and that the recipient reaches the backend and the
// Received header as sent.
func TestSMTPUTF8Received(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN")
	send := func(n int) *fakeMessage {
		cl.send("MAIL FROM:<a@example.org> SMTPUTF8", "RCPT TO:<张三@例子.中国>", "DATA")
		cl.expect("250 2.1.0 sender OK")
		cl.expect("250 2.1.5 recipient OK")
		cl.expect("354 end data with <CR><LF>.<CR><LF>")
		cl.send("Subject: 你好", "", "正文", ".")
		cl.expect("250 2.0.0 OK queued as MSG000" + string(rune('1'+n)))
		return be.message(t, n)
	}
	m := send(0)
	if got := receivedWith(t, m); got != "UTF8SMTP" {
		t.Errorf("Received with %q, want UTF8SMTP", got)
	}
	if len(m.rcpts) != 1 || m.rcpts[0] != "张三@例子.中国" || !strings.Contains(m.body.String(), "\tfor <张三@例子.中国>;") {
		t.Errorf("rcpts %q, body %q", m.rcpts, m.body.String())
	}
	if !strings.HasSuffix(m.body.String(), "Subject: 你好\r\n\r\n正文\r\n") {
		t.Errorf("body %q", m.body.String())
	}
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("235 2.7.0 authentication successful")
	if got := receivedWith(t, send(1)); got != "UTF8SMTPA" {
		t.Errorf("Received with %q, want UTF8SMTPA", got)
	}
	if got := receivedWith(t, cl.sendMail(be, 2)); got != "ESMTPA" {
		t.Errorf("Received with %q after a transaction without SMTPUTF8, want ESMTPA", got)
	}
}
