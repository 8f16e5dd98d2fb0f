package mta

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"testing"

	"gomta/mta/mtatest"
)

// TestAuthenticatedNullSenderRelays: an authenticated client, outside the
// trusted networks, may send from the null sender (auto-replies, read
// receipts) to a remote domain; the message reaches the remote mailbox. An
// unauthenticated client's null sender still reaches local recipients only.
func TestAuthenticatedNullSenderRelays(t *testing.T) {
	hosts := runHosts(t, "trusted_networks = [\"127.0.0.1/32\"]\nplaintext_auth = \"always\"\n")
	qq, gm := hosts["exmail.qq.com"], hosts["gmail.com"]

	anon := untrustedClient(t, qq.SMTPAddr)
	if err := anon.Mail(""); err != nil {
		t.Fatal(err)
	}
	var te *textproto.Error
	if err := anon.Rcpt("usr@gmail.com"); !errors.As(err, &te) || te.Code != 554 {
		t.Fatalf("unauthenticated null sender to a remote domain: %v, want 554 relay denied", err)
	}

	c := untrustedClient(t, qq.SMTPAddr)
	if err := c.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", "pass1", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	sendVia(t, c, "", []string{"usr@gmail.com"}, "auto-reply")
	mtatest.Eventually(t, "the null sender's message in usr@gmail.com's mailbox", func() bool {
		return countSubject(maildir(gm, "usr@gmail.com"), "auto-reply") == 1
	})
}
