package smtp

import (
	"crypto/tls"
	"net"
	"net/smtp"
	"os/exec"
	"strings"
	"testing"
)

// TestNetSMTPClient sends a message with Go's net/smtp.
func TestNetSMTPClient(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	msg := "From: a@example.org\r\nTo: b@example.org\r\nSubject: net/smtp\r\n\r\n.starts with a dot\r\nbye\r\n"
	if err := smtp.SendMail(addr, nil, "a@example.org", []string{"b@example.org", "c@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	m := be.message(t, 0)
	if m.from != "a@example.org" || strings.Join(m.rcpts, ",") != "b@example.org,c@example.net" {
		t.Errorf("envelope %q %q", m.from, m.rcpts)
	}
	if !strings.HasPrefix(m.body.String(), "Received: from localhost ([127.0.0.1])\r\n") || !strings.HasSuffix(m.body.String(), msg) {
		t.Errorf("message %q", m.body.String())
	}
}

// TestPythonSmtplib sends a message with Python's smtplib.
func TestPythonSmtplib(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	host, port, _ := net.SplitHostPort(addr)
	const script = `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.example")
s.sendmail("a@example.org", ["b@example.org"], "Subject: py\r\n\r\n.dot\r\nline\nbare lf fixed by smtplib\r\n")
code, _ = s.noop()
assert code == 250, code
s.quit()
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	m := be.message(t, 0)
	want := "Subject: py\r\n\r\n.dot\r\nline\r\nbare lf fixed by smtplib\r\n"
	if !strings.HasPrefix(m.body.String(), "Received: from py.example ([127.0.0.1])\r\n") || !strings.HasSuffix(m.body.String(), want) {
		t.Errorf("message %q", m.body.String())
	}
}

// TestSwaks sends a message with swaks, when installed.
func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed")
	}
	be := &fakeBackend{}
	_, addr := startServer(t, Config{}, be)
	out, err := exec.Command(swaks, "--server", addr, "--helo", "swaks.example", "--from", "a@example.org",
		"--to", "b@example.org", "--body", "hello from swaks", "--pipeline").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if m := be.message(t, 0); !strings.Contains(m.body.String(), "hello from swaks") {
		t.Errorf("message %q", m.body.String())
	}
}

// TestNetSMTPStartTLSAuth: Go's net/smtp with STARTTLS and PLAIN.
func TestNetSMTPStartTLSAuth(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t), Auth: testAuth}, be)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS")
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH after TLS %v %q", ok, mechs)
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "secret", "127.0.0.1")); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := c.Mail("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.net"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: tls\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	// net/smtp declares SMTPUTF8 whenever the server offers it.
	if got := receivedWith(t, be.message(t, 0)); got != "UTF8SMTPSA" {
		t.Errorf("Received with %q, want UTF8SMTPSA", got)
	}
}

// TestSwaksTLSAuth: swaks with STARTTLS and AUTH PLAIN, when installed.
func TestSwaksTLSAuth(t *testing.T) {
	t.Parallel()
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed")
	}
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t), Auth: testAuth}, be)
	out, err := exec.Command(swaks, "--server", addr, "--helo", "swaks.example", "--from", "alice@example.org",
		"--to", "b@example.org", "--body", "hello over TLS", "--tls", "--auth", "PLAIN",
		"--auth-user", "alice", "--auth-password", "secret").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	m := be.message(t, 0)
	if !strings.Contains(m.body.String(), "hello over TLS") || receivedWith(t, m) != "ESMTPSA" {
		t.Errorf("message %q", m.body.String())
	}
}

// TestPythonSmtplibStartTLSLogin: Python's smtplib with starttls() and login().
func TestPythonSmtplibStartTLSLogin(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t), Auth: testAuth}, be)
	host, port, _ := net.SplitHostPort(addr)
	const script = `
import smtplib, ssl, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.example")
s.ehlo()
assert not s.has_extn("auth")
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
try:
    s.login("alice", "wrong")
    raise SystemExit("wrong password accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login("alice", "secret")
s.sendmail("alice@example.org", ["b@example.org"], "Subject: py tls\r\n\r\nhi\r\n")
s.quit()
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	if got := receivedWith(t, be.message(t, 0)); got != "ESMTPSA" {
		t.Errorf("Received with %q, want ESMTPSA", got)
	}
}
