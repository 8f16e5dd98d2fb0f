package mta

import (
	"net/smtp"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

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
	h := policyHost(t) // exmail.qq.com: usr1@ and usr2@mail.sustech.edu.cn
	for _, c := range []struct {
		in, want  string
		local, ok bool
	}{
		{"USR2@Mail.Sustech.EDU.cn", "usr2@mail.sustech.edu.cn", true, true},
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
