package mta

import (
	"net/smtp"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// TestPostmasterAccepted: RFC 5321 §4.5.1: <Postmaster> (any case, no
// domain) and postmaster@ a local domain MUST be accepted, from anyone; the
// mail reaches the host's postmaster account, here the one set in
// [gomta.postmaster] on exmail.qq.com and the default (its only account) on
// gmail.com.
func TestPostmasterAccepted(t *testing.T) {
	hosts := runHosts(t, "trusted_networks = [\"127.0.0.1/32\"]\n"+
		"[gomta.postmaster]\n\"exmail.qq.com\" = \"USR2@mail.sustech.edu.cn\"\n")
	qq, gm := hosts["exmail.qq.com"], hosts["gmail.com"]

	// An untrusted client with a foreign sender, each form in its own
	// transaction (one message would be de-duplicated to one copy).
	c := untrustedClient(t, qq.SMTPAddr)
	for i, rcpt := range []string{"Postmaster", "postmaster@mail.sustech.edu.cn", "POSTMASTER@Mail.Sustech.Edu.CN"} {
		sendVia(t, c, "stranger@example.org", []string{rcpt}, "to postmaster "+string(rune('a'+i)))
	}
	mtatest.Eventually(t, "three messages in usr2's mailbox (exmail.qq.com's postmaster)", func() bool {
		return countSubject(maildir(qq, "usr2@mail.sustech.edu.cn"), "to postmaster a") == 1 &&
			countSubject(maildir(qq, "usr2@mail.sustech.edu.cn"), "to postmaster b") == 1 &&
			countSubject(maildir(qq, "usr2@mail.sustech.edu.cn"), "to postmaster c") == 1
	})

	// A trusted local sender with Python's smtplib, to gmail.com's host:
	// <Postmaster> is local there, never relayed to an empty domain.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	out, err := exec.Command(py, "-c", `
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port), timeout=10) as s:
    s.ehlo("test")
    print(s.sendmail("usr@gmail.com", ["Postmaster"], "Subject: smtplib postmaster\r\n\r\nhi\r\n"))
`, gm.SMTPAddr.String()).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "{}" {
		t.Fatalf("smtplib to <Postmaster>: %v\n%s", err, out)
	}
	mtatest.Eventually(t, "the message in usr@gmail.com's mailbox (gmail.com's postmaster)", func() bool {
		return countSubject(maildir(gm, "usr@gmail.com"), "smtplib postmaster") == 1
	})
}

// TestCaseVariantsOneCopy: recipients that name one mailbox in different
// letter case get one copy, delivered locally (sent to gmail.com's host) or
// relayed (sent through exmail.qq.com). The positive signal that every copy
// has been delivered: a later marker message has arrived and both queues are
// empty (a message leaves the queue once each recipient is done).
func TestCaseVariantsOneCopy(t *testing.T) {
	hosts := runHosts(t, "")
	qq, gm := hosts["exmail.qq.com"], hosts["gmail.com"]
	variants := []string{"usr@gmail.com", "USR@gmail.com", "Usr@GMAIL.COM", "usr@GMAIL.com"}
	for _, via := range []struct {
		name string
		h    *Host
		from string
	}{{"local", gm, "usr@gmail.com"}, {"relayed", qq, "usr1@mail.sustech.edu.cn"}} {
		err := smtp.SendMail(via.h.SMTPAddr.String(), nil, via.from, variants,
			[]byte("Subject: variants "+via.name+"\r\n\r\none copy\r\n"))
		if err != nil {
			t.Fatalf("%s: %v", via.name, err)
		}
		err = smtp.SendMail(via.h.SMTPAddr.String(), nil, via.from, []string{"usr@gmail.com"},
			[]byte("Subject: marker "+via.name+"\r\n\r\nafter\r\n"))
		if err != nil {
			t.Fatalf("%s marker: %v", via.name, err)
		}
		// Both queues empty (qq's looked at first: what it relayed is in
		// gm's queue until delivered) means every copy is in the mailbox.
		mtatest.Eventually(t, via.name+": marker delivered and both queues empty", func() bool {
			return qq.Queue.Len() == 0 && gm.Queue.Len() == 0 &&
				countSubject(maildir(gm, "usr@gmail.com"), "marker "+via.name) == 1
		})
		if n := countSubject(maildir(gm, "usr@gmail.com"), "variants "+via.name); n != 1 {
			t.Errorf("%s: %d copies of one message in one mailbox, want 1", via.name, n)
		}
	}
}

func TestCanonicalRcpt(t *testing.T) {
	h := policyHost(t) // exmail.qq.com: usr1@ (its postmaster) and usr2@mail.sustech.edu.cn
	for _, c := range []struct {
		in, want  string
		local, ok bool
	}{
		{"USR2@Mail.Sustech.EDU.cn", "usr2@mail.sustech.edu.cn", true, true},
		{"Postmaster", "usr1@mail.sustech.edu.cn", true, true},
		{"postMASTER@MAIL.sustech.edu.cn", "usr1@mail.sustech.edu.cn", true, true},
		{"ghost@mail.sustech.edu.cn", "ghost@mail.sustech.edu.cn", true, false},
		{"Someone@Example.ORG", "Someone@example.org", false, true},
		{"postmaster@example.org", "postmaster@example.org", false, true},
		{"nobody", "nobody", true, false},
	} {
		got, local, ok := h.canonicalRcpt(c.in)
		if got != c.want || local != c.local || ok != c.ok {
			t.Errorf("canonicalRcpt(%q) = %q, %v, %v; want %q, %v, %v", c.in, got, local, ok, c.want, c.local, c.ok)
		}
	}
	env := h.envelope([]string{"usr2@mail.sustech.edu.cn", "x@Example.org", "USR2@MAIL.SUSTECH.EDU.CN", "X@example.org", "x@EXAMPLE.ORG"})
	if strings.Join(env, " ") != "usr2@mail.sustech.edu.cn x@example.org X@example.org" {
		t.Errorf("envelope: %q", env)
	}
}

func TestPostmasterLoggedAtStart(t *testing.T) {
	cfg, err := config.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server("exmail.qq.com")
	s.SMTPPort, s.POPPort = 0, 0
	core, logs := observer.New(zap.InfoLevel)
	h, err := NewHost(cfg, s, t.TempDir(), nil, zap.New(core), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	l := logs.FilterMessage("postmaster account").All()
	if len(l) != 1 || l[0].ContextMap()["rcpt"] != "usr1@mail.sustech.edu.cn" {
		t.Errorf("start log: %v", logs.All())
	}
}
