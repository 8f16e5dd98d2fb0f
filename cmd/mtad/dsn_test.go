package main

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/smtpclient/smtpclienttest"
)

// pyDSN sends one message with Python's smtplib and DSN parameters: argv
// is the SMTP address and a JSON object {from, to, mail, rcpt, msg}.
const pyDSN = `
import json, smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
a = json.loads(sys.argv[2])
with smtplib.SMTP(host, int(port), timeout=10) as s:
    s.ehlo("dsn.test")
    assert s.has_extn("dsn"), "DSN not offered"
    print(json.dumps(s.sendmail(a["from"], a["to"], a["msg"], mail_options=a["mail"], rcpt_options=a["rcpt"])))
`

// sendDSN sends msg from usr1@mail.sustech.edu.cn to rcpts at addr with
// the DSN parameters mail (on MAIL) and rcpt (on each RCPT).
func sendDSN(t *testing.T, addr string, rcpts, mail, rcpt []string, msg string) {
	t.Helper()
	arg, err := json.Marshal(map[string]any{"from": "usr1@mail.sustech.edu.cn", "to": rcpts,
		"mail": append([]string{}, mail...), "rcpt": append([]string{}, rcpt...), "msg": msg})
	if err != nil {
		t.Fatal(err)
	}
	if out := python(t, pyDSN, addr, string(arg)); strings.TrimSpace(out) != "{}" {
		t.Fatalf("smtplib refused recipients: %s", out)
	}
}

func wantAll(t *testing.T, what, m string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(m, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, m)
		}
	}
}

// TestDSNSuccessLocal: NOTIFY=SUCCESS on a local recipient gives the sender
// a success DSN (Action: delivered, 2.0.0) naming ENVID and ORCPT, headers
// only (RET=HDRS); the recipient gets the message. The recipient is given
// in another case than its account's: the parameters follow it to its
// canonical form as queued.
func TestDSNSuccessLocal(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	sendDSN(t, c.qqSMTPAddr(), []string{"Usr2@Mail.Sustech.Edu.CN"}, []string{"RET=HDRS", "ENVID=env+2B42"},
		[]string{"NOTIFY=SUCCESS", "ORCPT=rfc822;Usr2@mail.sustech.edu.cn"},
		"Subject: dsn success\r\n\r\nsecret-body-text\r\n")
	waitMail(t, c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2", 1)
	m := waitMail(t, c.qqPOPAddr(), "usr1@mail.sustech.edu.cn", "pass1", 1)[0]
	wantAll(t, "success DSN", m, "Subject: Successful Mail Delivery Report", "report-type=delivery-status",
		"Original-Envelope-Id: env+42", "Original-Recipient: rfc822; Usr2@mail.sustech.edu.cn",
		"Final-Recipient: rfc822; usr2@mail.sustech.edu.cn", "Action: delivered", "Status: 2.0.0", "Subject: dsn success")
	if strings.Contains(m, "secret-body-text") {
		t.Errorf("RET=HDRS notice returns the body:\n%s", m)
	}
}

// TestDSNNeverSuppressesBounce: NOTIFY=NEVER on an unknown remote user
// gives no bounce: the log says it was suppressed, and a later message is
// then the only one in the sender's mailbox.
func TestDSNNeverSuppressesBounce(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	sendDSN(t, c.qqSMTPAddr(), []string{"nobody@gmail.com"}, nil, []string{"NOTIFY=NEVER"},
		"Subject: into the void\r\n\r\nbody\r\n")
	c.qq.WaitLog(t, `"msg":"bounce suppressed by NOTIFY"`)
	sendDSN(t, c.qqSMTPAddr(), []string{"usr1@mail.sustech.edu.cn"}, nil, nil, "Subject: marker\r\n\r\nafter\r\n")
	msgs := waitMail(t, c.qqPOPAddr(), "usr1@mail.sustech.edu.cn", "pass1", 1)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: marker") {
		t.Errorf("want only the marker, got %d messages:\n%s", len(msgs), strings.Join(msgs, "\n----\n"))
	}
}

// TestDSNFailureReturn: NOTIFY=FAILURE with RET=HDRS bounces without the
// body; with RET=FULL the whole message comes back (message/rfc822).
func TestDSNFailureReturn(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	for _, ret := range []string{"HDRS", "FULL"} {
		sendDSN(t, c.qqSMTPAddr(), []string{"nobody@gmail.com"}, []string{"RET=" + ret}, []string{"NOTIFY=FAILURE"},
			"Subject: ret "+ret+"\r\n\r\nsecret-body-"+ret+"\r\n")
	}
	msgs := waitMail(t, c.qqPOPAddr(), "usr1@mail.sustech.edu.cn", "pass1", 2)
	got := map[string]string{}
	for _, m := range msgs {
		for _, ret := range []string{"HDRS", "FULL"} {
			if strings.Contains(m, "Subject: ret "+ret) {
				got[ret] = m
			}
		}
	}
	wantAll(t, "RET=HDRS bounce", got["HDRS"], "Action: failed", "5.1.1", "Content-Type: text/rfc822-headers")
	if strings.Contains(got["HDRS"], "secret-body-HDRS") {
		t.Errorf("RET=HDRS bounce returns the body:\n%s", got["HDRS"])
	}
	wantAll(t, "RET=FULL bounce", got["FULL"], "Action: failed", "Content-Type: message/rfc822", "secret-body-FULL")
}

// popAddr is the POP3 address of a relayingMtad, read from its config.
func popAddr(t *testing.T, d *mtatest.Daemon) string {
	t.Helper()
	cfg, err := os.ReadFile(d.Args[1]) // -config path
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`pop = (\d+)`).FindStringSubmatch(string(cfg))
	if m == nil {
		t.Fatalf("no pop port in %s", cfg)
	}
	return "127.0.0.1:" + m[1]
}

// TestDSNRelay: to a next hop that offers DSN the parameters are passed on
// (ORCPT added where none was given) and no notice comes from us; to one
// without DSN, NOTIFY=SUCCESS gets an Action: relayed notice.
func TestDSNRelay(t *testing.T) {
	t.Parallel()
	withDSN := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "DSN"}})
	dd, addr := relayingMtad(t, withDSN, "")
	sendDSN(t, addr, []string{"ann@far.test"}, []string{"RET=FULL", "ENVID=e1"}, []string{"NOTIFY=SUCCESS,DELAY"},
		"Subject: relayed with dsn\r\n\r\nbody\r\n")
	mtatest.Eventually(t, "the message at the next hop", func() bool { return len(withDSN.Messages()) == 1 })
	lines := strings.Join(withDSN.Lines(), "\n")
	wantAll(t, "next hop's transcript", lines, "MAIL FROM:<usr1@mail.sustech.edu.cn> RET=FULL ENVID=e1",
		"RCPT TO:<ann@far.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;ann@far.test")
	// The hop with DSN reports success itself: no notice from us. A
	// notice would be queued before the message is done, so once it is
	// done a marker sent after it must be usr1's only message.
	dd.WaitLog(t, `"msg":"message done"`)
	if strings.Contains(dd.Log.String(), `"msg":"success notice queued"`) {
		t.Errorf("a success notice for a hop that offers DSN:\n%s", dd.Log.String())
	}
	sendDSN(t, addr, []string{"usr1@mail.sustech.edu.cn"}, nil, nil, "Subject: marker\r\n\r\nafter\r\n")
	if msgs := waitMail(t, popAddr(t, dd), "usr1@mail.sustech.edu.cn", "pass1", 1); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: marker") {
		t.Errorf("want only the marker, got %d messages:\n%s", len(msgs), strings.Join(msgs, "\n----\n"))
	}

	noDSN := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	d, addr := relayingMtad(t, noDSN, "")
	sendDSN(t, addr, []string{"ann@far.test"}, nil, []string{"NOTIFY=SUCCESS"}, "Subject: relayed without dsn\r\n\r\nbody\r\n")
	m := waitMail(t, popAddr(t, d), "usr1@mail.sustech.edu.cn", "pass1", 1)[0]
	wantAll(t, "relayed notice", m, "Action: relayed", "Status: 2.0.0", "Final-Recipient: rfc822; ann@far.test",
		"Remote-MTA: dns; mx.far.test")
	if l := strings.Join(noDSN.Lines(), "\n"); strings.Contains(l, "NOTIFY=") || strings.Contains(l, "ORCPT=") {
		t.Errorf("DSN parameters sent to a hop without DSN:\n%s", l)
	}
}

// TestDSNParamsSurviveRestart: a message deferred by the next hop keeps
// its DSN parameters across a restart of mtad (journal round trip): the
// attempt after the restart passes them on as the first did.
func TestDSNParamsSurviveRestart(t *testing.T) {
	t.Parallel()
	var accept atomic.Bool
	hop := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "DSN"}, Rcpt: func(string) string {
		if accept.Load() {
			return ""
		}
		return "451 4.3.0 try later"
	}})
	d, addr := relayingMtad(t, hop, "retry_base = \"200ms\"\nretry_max = \"200ms\"")
	sendDSN(t, addr, []string{"ann@far.test"}, []string{"RET=HDRS", "ENVID=keep+2Bme"},
		[]string{"NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Ann+2Bx@far.test"}, "Subject: restart\r\n\r\nbody\r\n")
	d.WaitLog(t, `"msg":"retry scheduled"`)
	d.Stop(t)
	accept.Store(true)
	_, smtpPort, _ := net.SplitHostPort(addr)
	_, popPort, _ := net.SplitHostPort(popAddr(t, d))
	sp, _ := strconv.Atoi(smtpPort)
	pp, _ := strconv.Atoi(popPort)
	mtatest.StartDaemon(t, d.Args, sp, pp)
	mtatest.Eventually(t, "the message at the next hop after the restart", func() bool { return len(hop.Messages()) == 1 })
	var mails, rcpts int
	for _, l := range hop.Lines() {
		switch {
		case strings.HasPrefix(l, "MAIL FROM:"):
			mails++
			if l != "MAIL FROM:<usr1@mail.sustech.edu.cn> RET=HDRS ENVID=keep+2Bme" {
				t.Errorf("MAIL line %q", l)
			}
		case strings.HasPrefix(l, "RCPT TO:"):
			rcpts++
			if l != "RCPT TO:<ann@far.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Ann+2Bx@far.test" {
				t.Errorf("RCPT line %q", l)
			}
		}
	}
	if mails < 2 || rcpts < 2 {
		t.Errorf("%d MAIL and %d RCPT lines, want an attempt before and one after the restart", mails, rcpts)
	}
}
