package smtp

import (
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
