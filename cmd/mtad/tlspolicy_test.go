package main

import (
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/selfsigned"
	"gomta/session/smtpclient/smtpclienttest"
)

// gmailMX is the course's mail exchanger of gmail.com: the name a
// certificate must carry for policy verify.
const gmailMX = "gmail-smtp-in.l.google.com"

// pemPair writes a new self-signed certificate for names as cert.pem and
// key.pem in a directory of the test's own; cert.pem is also a CA file
// that verifies it.
func pemPair(t *testing.T, names ...string) (certFile, keyFile string) {
	t.Helper()
	c, err := selfsigned.New(names, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := selfsigned.PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, certFile, string(certPEM))
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// tlsCourse runs the course's two hosts in one mtad serving a certificate
// for gmail.com's mail exchanger, with gomta's extra settings, and returns
// the daemon and the ports (qq SMTP, qq POP3, gmail SMTP, gmail POP3).
func tlsCourse(t *testing.T, extra string) (*mtatest.Daemon, []int) {
	t.Helper()
	cert, key := pemPair(t, gmailMX)
	path, p := mtatest.Course(t, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n%s", cert, key, extra))
	return mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...), p
}

// submit sends a message in plain text (net/smtp's SendMail would insist on
// verifying the host's certificate for 127.0.0.1).
func submit(t *testing.T, addr, to, subject string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("usr1@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: " + subject + "\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// firstMessage waits for a message in user's maildrop at addr and returns it.
func firstMessage(t *testing.T, addr, user, pass string) string {
	t.Helper()
	mtatest.WaitMailbox(t, addr, user, pass, 1)
	m, err := popLogin(t, addr, user, pass).Retr(1)
	if err != nil {
		t.Fatal(err)
	}
	return string(m)
}

func wantIn(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestTLSPolicyVerifyDelivers: gmail.com's policy is verify with ca_file
// the CA of the certificate its mail exchanger serves under its MX name:
// the message goes over verified TLS (relay delivered says tls, the
// receiving host writes ESMTPS).
func TestTLSPolicyVerifyDelivers(t *testing.T) {
	t.Parallel()
	cert, key := pemPair(t, gmailMX)
	path, p := mtatest.Course(t, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n"+
		"[gomta.tls_policy.\"gmail.com\"]\npolicy = \"verify\"\nca_file = %q\n", cert, key, cert))
	d := mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	submit(t, mtatest.Addr(p[0]), "usr@gmail.com", "verified")
	msg := firstMessage(t, mtatest.Addr(p[3]), "usr@gmail.com", "pass")
	wantIn(t, "delivered message", msg, "Subject: verified", "with ESMTPS")
	d.WaitLog(t, `"msg":"relay delivered"`)
	wantIn(t, "log", d.Log.String(), `"rcpt":"usr@gmail.com","mx":"`+gmailMX+`","mx_addr":"127.0.0.1:`+fmt.Sprint(p[2])+`","tls":true`)
}

// TestTLSPolicyVerifyWrongCADefersThenBounces: the certificate does not
// chain to ca_file: each attempt is deferred with 4.7.5 naming the
// verification failure, and the bounce at the end of the lifetime quotes
// it; the message never reaches gmail.com.
func TestTLSPolicyVerifyWrongCADefersThenBounces(t *testing.T) {
	t.Parallel()
	otherCA, _ := pemPair(t, gmailMX)
	d, p := tlsCourse(t, fmt.Sprintf("retry_base = \"50ms\"\nretry_max = \"100ms\"\nmax_queue_lifetime = \"1s\"\ndelay_warning = \"0s\"\n"+
		"tls_policy = { \"gmail.com\" = { policy = \"verify\", ca_file = %q } }\n", otherCA))
	submit(t, mtatest.Addr(p[0]), "usr@gmail.com", "wrong CA")
	why := "TLS required by policy for gmail.com, but certificate verification failed: x509: certificate signed by unknown authority"
	d.WaitLog(t, why)
	wantIn(t, "log", d.Log.String(), `"msg":"relay deferred"`, `"enhanced":"4.7.5"`)
	bounce := firstMessage(t, mtatest.Addr(p[1]), "usr1@mail.sustech.edu.cn", "pass1")
	wantIn(t, "bounce", bounce, "Final-Recipient: rfc822; usr@gmail.com", "Status: 5.4.7",
		"the last attempt got: STARTTLS with "+gmailMX+"[127.0.0.1]:", why)
	if n, err := mtatest.MailboxCount(mtatest.Addr(p[3]), "usr@gmail.com", "pass"); err != nil || n != 0 {
		t.Fatalf("gmail.com holds %d messages (%v)", n, err)
	}
}

// TestTLSPolicyRequireWithoutSTARTTLSDefersThenBounces: far.test requires
// TLS and its mail exchanger does not offer STARTTLS: the sender gets a
// delay notice with 4.7.5 and the reason, then a bounce quoting it; the
// mail exchanger never sees MAIL.
func TestTLSPolicyRequireWithoutSTARTTLSDefersThenBounces(t *testing.T) {
	t.Parallel()
	far := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	d, addr := relayingMtad(t, far, "retry_base = \"50ms\"\nretry_max = \"200ms\"\nmax_queue_lifetime = \"3s\"\n"+
		"delay_warning = \"1s\"\ntls_policy = { \"far.test\" = \"require\" }\n")
	sendFar(t, addr, 1)
	why := "STARTTLS with mx.far.test[127.0.0.1]:" + far.Port() +
		": TLS required by policy for far.test, but the server did not offer STARTTLS"
	d.WaitLog(t, why)
	popAddr := mtatest.Addr(popPort(t, d))
	mtatest.WaitMailbox(t, popAddr, "usr1@mail.sustech.edu.cn", "pass1", 2)
	c := popLogin(t, popAddr, "usr1@mail.sustech.edu.cn", "pass1")
	var notice, bounce string
	for i := 1; i <= 2; i++ {
		m, err := c.Retr(i)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m), "Action: delayed") {
			notice = string(m)
		} else {
			bounce = string(m)
		}
	}
	wantIn(t, "delay notice", notice, "Status: 4.7.5", "<ann@far.test>: "+why)
	wantIn(t, "bounce", bounce, "Action: failed", "Status: 5.4.7", "Diagnostic-Code: X-gomta; "+why,
		"delivery time expired (5.4.7); the last attempt got: "+why)
	if n := countLines(far.Lines(), "MAIL"); n != 0 || len(far.Messages()) != 0 {
		t.Fatalf("the mail exchanger got %d MAIL commands", n)
	}
}

// popPort is the POP3 port of relayingMtad's daemon, from its config.
func popPort(t *testing.T, d *mtatest.Daemon) int {
	t.Helper()
	b, err := os.ReadFile(d.Args[1])
	if err != nil {
		t.Fatal(err)
	}
	var smtpPort, pop int
	if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 3)[1], "\"exmail.qq.com\" = { smtp = %d, pop = %d }", &smtpPort, &pop); err != nil {
		t.Fatal(err)
	}
	return pop
}

// TestTLSPolicyOpportunisticThenRequireOnReload: far.test's mail exchanger
// does not offer STARTTLS. Opportunistic (written out, with "*" requiring
// TLS for the rest) delivers in plain text; after SIGHUP makes far.test
// require TLS, the next message is deferred for want of STARTTLS, and the
// kept plain connection is not used for it.
func TestTLSPolicyOpportunisticThenRequireOnReload(t *testing.T) {
	t.Parallel()
	far := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	d, addr := relayingMtad(t, far, "tls_policy = { \"far.test\" = \"opportunistic\", \"*\" = \"require\" }\n")
	sendFar(t, addr, 1)
	d.WaitLog(t, `"msg":"relay delivered"`)
	if len(far.Messages()) != 1 || countLines(far.Lines(), "STARTTLS") != 0 {
		t.Fatalf("%d messages, lines %q", len(far.Messages()), far.Lines())
	}
	wantIn(t, "log", d.Log.String(), `"tls":false`)
	path := d.Args[1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, strings.Replace(string(b), `"far.test" = "opportunistic"`, `"far.test" = "require"`, 1))
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.Log.WaitFor(t, "config reloaded", 1)
	wantIn(t, "log", d.Log.String(), `tls_policy`)
	sendFar(t, addr, 2)
	d.WaitLog(t, "TLS required by policy for far.test, but the server did not offer STARTTLS")
	if n := len(far.Messages()); n != 1 {
		t.Fatalf("%d messages at the mail exchanger, want the first only", n)
	}
}

// TestTLSPolicyVerifyChecksMXName: a certificate that chains to ca_file but
// names another host does not pass verify: the message is deferred naming
// the mismatch and never reaches gmail.com.
func TestTLSPolicyVerifyChecksMXName(t *testing.T) {
	t.Parallel()
	cert, key := pemPair(t, "someone.else.test")
	path, p := mtatest.Course(t, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n"+
		"tls_policy = { \"gmail.com\" = { policy = \"verify\", ca_file = %q } }\n", cert, key, cert))
	d := mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	submit(t, mtatest.Addr(p[0]), "usr@gmail.com", "wrong name")
	d.WaitLog(t, "TLS required by policy for gmail.com, but certificate verification failed: "+
		"x509: certificate is valid for someone.else.test, not "+gmailMX)
	wantIn(t, "log", d.Log.String(), `"msg":"relay deferred"`)
	if n, err := mtatest.MailboxCount(mtatest.Addr(p[3]), "usr@gmail.com", "pass"); err != nil || n != 0 {
		t.Fatalf("gmail.com holds %d messages (%v)", n, err)
	}
}
