package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"gomta/mta/mtatest"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsSetup runs both course servers in one process with a self-signed
// certificate, only 127.0.0.1 trusted, and implicit-TLS ports for exmail.
func tlsSetup(t *testing.T) (ports []int, smtps, pop3s int) {
	t.Helper()
	extra := mtatest.FreePorts(t, 2)
	cfg, p := writeConfig(t, fmt.Sprintf(`[gomta]
trusted_networks = ["127.0.0.1/32"]
tls_self_signed = true
[gomta.implicit_tls."exmail.qq.com"]
smtp = %d
pop = %d
`, extra[0], extra[1]))
	mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, append(p, extra...)...)
	return p, extra[0], extra[1]
}

// dialFrom127002 connects from 127.0.0.2, outside the trusted network.
func dialFrom127002(t *testing.T, port int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	return conn
}

func replyCode(t *testing.T, err error) int {
	t.Helper()
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	return 250
}

// TestAuthenticatedSubmissionOverSTARTTLS: an untrusted client gets no AUTH
// before TLS, authenticates after STARTTLS, may then relay, but only as itself;
// the relay to the other host uses STARTTLS too.
func TestAuthenticatedSubmissionOverSTARTTLS(t *testing.T) {
	t.Parallel()
	p, _, _ := tlsSetup(t)
	connect := func() *smtp.Client {
		cl, err := smtp.NewClient(dialFrom127002(t, p[0]), "exmail.qq.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := cl.Extension("AUTH"); ok {
			t.Error("AUTH offered to an untrusted client before TLS")
		}
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			t.Fatal("STARTTLS not offered")
		}
		if err := cl.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "exmail.qq.com"}); err != nil {
			t.Fatal(err)
		}
		if ok, mechs := cl.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
			t.Fatalf("AUTH after TLS: %v %q", ok, mechs)
		}
		return cl
	}
	bad := connect() // net/smtp quits after a failed AUTH
	if err := bad.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", "wrong", "exmail.qq.com")); replyCode(t, err) != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	bad.Close()
	cl := connect()
	defer cl.Close()
	if err := cl.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", "pass1", "exmail.qq.com")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if got := replyCode(t, cl.Mail("usr2@mail.sustech.edu.cn")); got != 553 {
		t.Errorf("authenticated as usr1, MAIL FROM usr2: %d, want 553", got)
	}
	if got := replyCode(t, cl.Mail("usr1@mail.sustech.edu.cn")); got != 250 {
		t.Fatalf("MAIL FROM own address: %d", got)
	}
	if got := replyCode(t, cl.Rcpt("usr@gmail.com")); got != 250 {
		t.Fatalf("authenticated relay: %d, want 250", got)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(message("usr1@mail.sustech.edu.cn", "usr@gmail.com", "authenticated", "over TLS"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cl.Quit()
	m := waitMail(t, mtatest.Addr(p[3]), "usr@gmail.com", "pass", 1)[0]
	// net/smtp declares SMTPUTF8 whenever the server offers it (RFC 6531 §4.3).
	if !strings.Contains(m, "with UTF8SMTPSA") {
		t.Errorf("first hop was authenticated over TLS; Received headers:\n%s", m)
	}
	if !strings.Contains(m, "with ESMTPS ") {
		t.Errorf("the relay hop should use STARTTLS; Received headers:\n%s", m)
	}
}

func TestSwaksTLSAuth(t *testing.T) {
	t.Parallel()
	swaks := needTool(t, "swaks")
	p, _, _ := tlsSetup(t)
	out, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", strconv.Itoa(p[0]), "--local-interface", "127.0.0.2",
		"--tls", "--auth", "PLAIN", "--auth-user", "usr1@mail.sustech.edu.cn", "--auth-password", "pass1",
		"--from", "usr1@mail.sustech.edu.cn", "--to", "usr@gmail.com", "--header", "Subject: swaks tls",
		"--timeout", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks --tls --auth: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "pass1") {
		t.Log("(swaks prints the AUTH exchange base64-encoded; that is swaks's transcript, not our log)")
	}
	waitMail(t, mtatest.Addr(p[3]), "usr@gmail.com", "pass", 1)
}

func TestPOP3OverSTLSAndImplicitTLS(t *testing.T) {
	t.Parallel()
	p, smtps, pop3s := tlsSetup(t)
	// Submit over implicit TLS (submissions) with AUTH from the untrusted address.
	conn := dialFrom127002(t, smtps)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	cl, err := smtp.NewClient(tc, "exmail.qq.com")
	if err != nil {
		t.Fatalf("submissions: %v", err)
	}
	if err := cl.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", "pass1", "exmail.qq.com")); err != nil {
		t.Fatalf("AUTH over implicit TLS: %v", err)
	}
	if err := cl.Mail("usr1@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rcpt("usr2@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	w, _ := cl.Data()
	w.Write(message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "implicit", "tls"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cl.Quit()

	out := python(t, `
import poplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)
print(p.stls(context=ctx).decode())
p.user("usr2@mail.sustech.edu.cn"); p.pass_("pass2")
print(p.stat()[0]); p.quit()
s = poplib.POP3_SSL("127.0.0.1", int(sys.argv[2]), context=ctx, timeout=10)
s.user("usr2@mail.sustech.edu.cn"); s.pass_("pass2")
print(s.stat()[0]); s.quit()
`, strconv.Itoa(p[1]), strconv.Itoa(pop3s))
	lines := strings.Fields(out)
	if len(lines) < 3 || !strings.HasPrefix(out, "+OK") {
		t.Fatalf("poplib stls / POP3_SSL: %q", out)
	}
	if lines[len(lines)-1] == "0" && lines[len(lines)-2] == "0" {
		t.Log("message not yet delivered at first look; waiting")
		waitMail(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	}
}

func TestGenCert(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "certs")
	out, err := exec.Command(mtatest.Mtad(t), "-gen-cert", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("-gen-cert: %v\n%s", err, out)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	cfg, p := writeConfig(t, fmt.Sprintf("[gomta]\ntls_cert = %q\ntls_key = %q\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")))
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	d.WaitLog(t, "self-signed") // the log says plainly that the certificate is self-signed
}
