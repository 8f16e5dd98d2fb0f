package mta

import (
	"context"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// authHost is testHost with its POP3 server and mailbox actors running too,
// so that SMTP and POP3 logins share the host's Limiter as they do in mtad.
func authHost(t *testing.T, gomta string) *Host {
	t.Helper()
	h := testHost(t, gomta)
	mctx, stopMailboxes := context.WithCancel(context.Background())
	mdone := make(chan error, 1)
	go func() { mdone <- h.Mailboxes.Run(mctx) }()
	go h.pop3.Serve(h.pop3Ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		h.pop3.Shutdown(ctx)
		stopMailboxes()
		<-mdone
	})
	return h
}

// smtpAuthFrom runs EHLO and AUTH PLAIN with Go's net/smtp on a connection
// from the loopback address src; nil means 235.
func smtpAuthFrom(t *testing.T, addr, src, user, pass string) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(nc, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	// PlainAuth sends the password in the clear to 127.0.0.1 only.
	return c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1"))
}

// smtpCode is the reply code of a net/smtp result: 235 for nil.
func smtpCode(t *testing.T, err error) int {
	t.Helper()
	var te *textproto.Error
	switch {
	case err == nil:
		return 235
	case errors.As(err, &te):
		return te.Code
	}
	t.Fatalf("AUTH: %v", err)
	return 0
}

// poplibLogins runs USER/PASS with Python's poplib, one connection per
// step "src user pass" (src a loopback address), and returns the PASS
// reply of each.
const poplibLogins = `
import poplib, socket, sys
class P(poplib.POP3):
    def __init__(self, src, port):
        self.src = src
        super().__init__('127.0.0.1', port, timeout=10)
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.src, 0))
port = int(sys.argv[1])
for step in sys.argv[2:]:
    src, user, pw = step.split(' ', 2)
    p = P(src, port)
    p.user(user)
    try:
        print(p.pass_(pw).decode())
        p.quit()
    except poplib.error_proto as e:
        print(e.args[0].decode())
    p.close()
`

func poplib(t *testing.T, addr string, steps ...string) []string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{"-c", poplibLogins, port}, steps...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// TestLockoutIgnoresLetterCase (issue 9, item 4): failed logins count
// against the account as the account lookup folds it, so spelling the
// address in other letter cases, on SMTP or POP3, neither escapes the
// lock-out nor spreads the failures over several counters. Each attempt
// comes from its own address, so that only the account's count can lock.
func TestLockoutIgnoresLetterCase(t *testing.T) {
	h := authHost(t, "auth_failures = 5\nauth_delay = \"0s\"\n")
	smtpAddr, popAddr := h.SMTPAddr.String(), h.POP3Addr.String()
	const (
		authFailed = "-ERR [AUTH] invalid user name or password"
		locked     = "-ERR [AUTH] too many failed logins, try later"
	)
	// Five failures, each in another spelling of usr1's address.
	for i, user := range []string{"usr1@mail.sustech.edu.cn", "USR1@mail.sustech.edu.cn", "Usr1@MAIL.SUSTECH.EDU.CN"} {
		if code := smtpCode(t, smtpAuthFrom(t, smtpAddr, "127.0.0.1"+string(rune('1'+i)), user, "guess")); code != 535 {
			t.Fatalf("failure %d (%s): %d, want 535", i+1, user, code)
		}
	}
	got := poplib(t, popAddr, "127.0.0.14 uSR1@Mail.sustech.edu.cn guess", "127.0.0.15 usr1@mail.SUSTECH.edu.cn guess")
	if len(got) != 2 || got[0] != authFailed || got[1] != authFailed {
		t.Fatalf("failures 4 and 5 over POP3: %q, want %q twice", got, authFailed)
	}
	// The account is locked in every spelling, with the right password,
	// from an address that has not failed yet.
	for _, user := range []string{"usr1@mail.sustech.edu.cn", "Usr1@Mail.Sustech.EDU.cn", "USR1@MAIL.SUSTECH.EDU.CN"} {
		if code := smtpCode(t, smtpAuthFrom(t, smtpAddr, "127.0.0.16", user, "pass1")); code != 421 {
			t.Errorf("SMTP AUTH as %s after 5 failures: %d, want 421 (locked out)", user, code)
		}
	}
	got = poplib(t, popAddr, "127.0.0.16 USR1@Mail.Sustech.Edu.Cn pass1", "127.0.0.16 usr1@mail.sustech.edu.cn pass1")
	if len(got) != 2 || got[0] != locked || got[1] != locked {
		t.Errorf("POP3 logins after 5 failures: %q, want %q twice", got, locked)
	}
	// Another account is not affected.
	if code := smtpCode(t, smtpAuthFrom(t, smtpAddr, "127.0.0.16", "USR2@mail.sustech.edu.cn", "pass2")); code != 235 {
		t.Errorf("usr2: %d, want 235", code)
	}
}
