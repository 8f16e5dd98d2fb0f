package mta

import (
	"net/smtp"
	"strconv"
	"strings"
	"testing"

	"gomta/mta/config"
	"gomta/mta/mtatest"
	"gomta/session/smtpclient/smtpclienttest"
)

// reportsIn returns the reports (bounces and delay notices) in user's
// mailbox on h, and how many of them are delay notices.
func reportsIn(h *Host, user string) (reports []string, delayed int) {
	for _, m := range maildir(h, user) {
		if strings.Contains(m, "multipart/report") {
			reports = append(reports, m)
			if strings.Contains(m, "Action: delayed") {
				delayed++
			}
		}
	}
	return reports, delayed
}

// bounceIn waits for the failure report (Action: failed) in user's mailbox.
func bounceIn(t *testing.T, h *Host, user string) string {
	t.Helper()
	var bounce string
	mtatest.Eventually(t, "the bounce in "+user+"'s mailbox", func() bool {
		reports, _ := reportsIn(h, user)
		for _, m := range reports {
			if strings.Contains(m, "Action: failed") {
				bounce = m
				return true
			}
		}
		return false
	})
	return bounce
}

func wantAll(t *testing.T, what, msg string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, msg)
		}
	}
}

// TestHostDownDelayNoticeThenLifetimeBounce: gmail.com's mail exchanger is
// down. With short settings, the sender gets one delay notice naming the
// recipient and the readable connect failure (4.4.1), and when the
// lifetime ends a bounce with 5.4.7 quoting the same failure, both From:
// MAILER-DAEMON at the sending host's mail domain.
func TestHostDownDelayNoticeThenLifetimeBounce(t *testing.T) {
	t.Parallel()
	port := mtatest.FreePorts(t, 1)[0] // nothing listens there
	hosts := runHostsWith(t, "retry_base = \"50ms\"\nretry_max = \"200ms\"\nmax_queue_lifetime = \"4s\"\ndelay_warning = \"1s\"\n",
		func(cfg *config.Config, _ map[string]*Host) { cfg.P[cfg.MX["gmail.com"]] = mtatest.Addr(port) })
	qq := hosts["exmail.qq.com"]
	body := "Subject: to a host that is down\r\n\r\nhello\r\n"
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	refused := "connect to gmail-smtp-in.l.google.com[127.0.0.1]:" + strconv.Itoa(port) + ": Connection refused"
	from := "From: Mail Delivery System <MAILER-DAEMON@mail.sustech.edu.cn>"
	bounce := bounceIn(t, qq, "usr1@mail.sustech.edu.cn")
	wantAll(t, "bounce", bounce, from, "Final-Recipient: rfc822; usr@gmail.com", "Status: 5.4.7",
		"Diagnostic-Code: X-gomta; "+refused, "delivery time expired (5.4.7); the last attempt got: "+refused,
		"Subject: to a host that is down")
	reports, delayed := reportsIn(qq, "usr1@mail.sustech.edu.cn")
	if delayed != 1 || len(reports) != 2 {
		t.Fatalf("%d delay notices and %d reports, want one notice and the bounce", delayed, len(reports))
	}
	for _, m := range reports {
		if strings.Contains(m, "Action: delayed") {
			wantAll(t, "delay notice", m, from, "Subject: Delayed Mail (still being retried)",
				"Final-Recipient: rfc822; usr@gmail.com", "Status: 4.4.1", "Will-Retry-Until: ",
				"<usr@gmail.com>: "+refused)
		}
	}
	mtatest.Eventually(t, "exmail.qq.com's queue empty", func() bool { return qq.Queue.Len() == 0 })
}

// TestLifetimeBounceQuotesTheLastReply: gmail.com's mail exchanger answers
// every RCPT with 451. When the lifetime ends the sender's bounce says
// 5.4.7 and quotes that reply and the host that gave it; with
// delay_warning = 0 no notice comes first.
func TestLifetimeBounceQuotesTheLastReply(t *testing.T) {
	t.Parallel()
	far := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{},
		Rcpt: func(string) string { return "451 4.7.1 greylisted, try later" }})
	hosts := runHostsWith(t, "retry_base = \"50ms\"\nretry_max = \"100ms\"\nmax_queue_lifetime = \"1s\"\ndelay_warning = \"0s\"\n",
		func(cfg *config.Config, _ map[string]*Host) { cfg.P[cfg.MX["gmail.com"]] = far.Addr() })
	qq := hosts["exmail.qq.com"]
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		[]byte("Subject: greylisted\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	bounce := bounceIn(t, qq, "usr1@mail.sustech.edu.cn")
	wantAll(t, "bounce", bounce, "From: Mail Delivery System <MAILER-DAEMON@mail.sustech.edu.cn>",
		"Status: 5.4.7", "Remote-MTA: dns; gmail-smtp-in.l.google.com",
		"Diagnostic-Code: smtp; 451 4.7.1 greylisted, try later",
		"host gmail-smtp-in.l.google.com said: 451 4.7.1 greylisted, try later")
	if reports, delayed := reportsIn(qq, "usr1@mail.sustech.edu.cn"); delayed != 0 || len(reports) != 1 {
		t.Fatalf("%d delay notices and %d reports, want the bounce only", delayed, len(reports))
	}
	if len(far.Messages()) != 0 {
		t.Fatal("the far host took the message")
	}
	mtatest.Eventually(t, "exmail.qq.com's queue empty", func() bool { return qq.Queue.Len() == 0 })
}
