package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gomta/mta"
	"gomta/mta/mtatest"
	"gomta/session/pop3client"
)

// reloadConfig is a one-host config on the ports p (SMTP, POP3), with the
// accounts given (address = password) and extra appended (a [gomta] table).
func hostConfig(p []int, accounts map[string]string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\n\"exmail.qq.com\" = { smtp = %d, pop = %d }\n[accounts.\"exmail.qq.com\"]\n", p[0], p[1])
	for a, pw := range accounts {
		fmt.Fprintf(&b, "%q = %q\n", a, pw)
	}
	fmt.Fprintf(&b, "[MX]\n\"mail.sustech.edu.cn.\" = \"mxbiz1.qq.com.\"\n[P]\n\"mxbiz1.qq.com.\" = \"%d\"\n%s", p[0], extra)
	return b.String()
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

var twoAccounts = map[string]string{"usr1@mail.sustech.edu.cn": "pass1", "usr2@mail.sustech.edu.cn": "pass2"}

// startReloadable starts mtad on a config file it returns, for rewriting.
func startReloadable(t *testing.T, extra string) (*mtatest.Daemon, string, []int) {
	t.Helper()
	p := mtatest.FreePorts(t, 2)
	path := filepath.Join(t.TempDir(), "config.toml")
	write(t, path, hostConfig(p, twoAccounts, extra))
	return mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...), path, p
}

// hup sends SIGHUP and waits for the n-th log line that says how the
// reload ended (applied or rejected).
func hup(t *testing.T, d *mtatest.Daemon, n int, outcome string) {
	t.Helper()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.Log.WaitFor(t, outcome, n)
}

func popLogin(t *testing.T, addr, user, pass string) *pop3client.Client {
	t.Helper()
	c, err := pop3client.Dial(context.Background(), addr, pop3client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass); err != nil {
		t.Fatalf("POP3 login %s: %v", user, err)
	}
	return c
}

// TestSIGHUPAddsAccount: an account added to the file logs in over POP3
// after SIGHUP and takes mail, while a POP3 and an SMTP session opened
// before the reload go on working; the log names the change, not the
// password.
func TestSIGHUPAddsAccount(t *testing.T) {
	t.Parallel()
	d, path, p := startReloadable(t, "")
	oldPOP := popLogin(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2")
	oldSMTP, err := smtp.Dial(mtatest.Addr(p[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer oldSMTP.Close()
	if err := oldSMTP.Mail("usr1@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	if c, err := pop3client.Dial(context.Background(), mtatest.Addr(p[1]), pop3client.Options{}); err != nil {
		t.Fatal(err)
	} else if err := c.Login("new@mail.sustech.edu.cn", "n3w-secret"); err == nil {
		t.Fatal("the account logs in before it exists")
	} else {
		c.Close()
	}

	accounts := map[string]string{"new@mail.sustech.edu.cn": "n3w-secret"}
	for a, pw := range twoAccounts {
		accounts[a] = pw
	}
	write(t, path, hostConfig(p, accounts, ""))
	hup(t, d, 1, "config reloaded")

	// The session opened before the reload sends to the new account.
	if err := oldSMTP.Rcpt("new@mail.sustech.edu.cn"); err != nil {
		t.Fatalf("RCPT to the new account in a session from before the reload: %v", err)
	}
	w, err := oldSMTP.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(message("usr1@mail.sustech.edu.cn", "new@mail.sustech.edu.cn", "welcome", "hello"))
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := oldSMTP.Quit(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := oldPOP.Stat(); err != nil {
		t.Fatalf("POP3 session from before the reload: %v", err)
	}
	if err := oldPOP.Quit(); err != nil {
		t.Fatal(err)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p[1]), "new@mail.sustech.edu.cn", "n3w-secret", 1)

	log := d.Log.String()
	if !strings.Contains(log, `"key":"accounts.exmail.qq.com","old":"","new":"new@mail.sustech.edu.cn"`) {
		t.Errorf("the log does not name the added account:\n%s", log)
	}
	if strings.Contains(log, "n3w-secret") {
		t.Error("the new password is in the log")
	}
}

// TestSIGHUPBadConfigRejected: a config with problems is rejected whole,
// each problem logged, and the old accounts keep working; a later good
// config is applied.
func TestSIGHUPBadConfigRejected(t *testing.T) {
	t.Parallel()
	d, path, p := startReloadable(t, "")
	bad := hostConfig(p, map[string]string{"usr1@mail.sustech.edu.cn": "other"},
		"[gomta]\nmax_errors = -1\ntrusted_networks = [\"not-a-cidr\"]\n")
	write(t, path, bad)
	hup(t, d, 1, "reload rejected")
	log := d.Log.String()
	for _, want := range []string{"max_errors must be 0 (off) or positive", `trusted_networks \"not-a-cidr\"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the rejection does not list %q:\n%s", want, log)
		}
	}
	// The old config serves: usr2 still exists, usr1's password is the old one.
	popLogin(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2").Quit()
	popLogin(t, mtatest.Addr(p[1]), "usr1@mail.sustech.edu.cn", "pass1").Quit()

	write(t, path, hostConfig(p, twoAccounts, "[gomta]\nmax_errors = 3\n"))
	hup(t, d, 1, "config reloaded")
	if !strings.Contains(d.Log.String(), `"key":"max_errors","old":"10","new":"3"`) {
		t.Errorf("the good config's change is not logged:\n%s", d.Log.String())
	}
}

// TestSIGHUPRestartKeyReported: a new port and listen address are reported as needing a restart and are not applied: mtad
// still serves on the old port; a change beside them is applied.
func TestSIGHUPRestartKeyReported(t *testing.T) {
	t.Parallel()
	d, path, p := startReloadable(t, "")
	np := mtatest.FreePorts(t, 1)
	write(t, path, hostConfig([]int{np[0], p[1]}, twoAccounts,
		"[gomta]\nlisten = \"0.0.0.0\"\nmax_recipients = 0\n"))
	hup(t, d, 1, "config reloaded")
	log := d.Log.String()
	for _, key := range []string{`"key":"server exmail.qq.com"`, `"key":"listen"`} {
		if !strings.Contains(log, "config change needs a restart: not applied") || !strings.Contains(log, key) {
			t.Errorf("%s not reported as needing a restart:\n%s", key, log)
		}
	}
	if !strings.Contains(log, `"key":"max_recipients","old":"100","new":"0"`) {
		t.Errorf("max_recipients not applied:\n%s", log)
	}
	if err := smtp.SendMail(mtatest.Addr(p[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
		message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "old-port", "x")); err != nil {
		t.Fatalf("the old port after the reload: %v", err)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	if c, err := net.Dial("tcp", mtatest.Addr(np[0])); err == nil {
		c.Close()
		t.Error("mtad listens on the new port without a restart")
	}
}

// TestZeroTurnsLimitsOff: max_message_size, max_recipients and max_errors
// accept 0, which switches them off: EHLO says SIZE 0 (RFC 1870: no fixed
// maximum), 150 recipients and 15 unknown commands pass.
func TestZeroTurnsLimitsOff(t *testing.T) {
	t.Parallel()
	_, _, p := startReloadable(t, "[gomta]\nmax_message_size = 0\nmax_recipients = 0\nmax_errors = 0\n")
	c, err := smtp.Dial(mtatest.Addr(p[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "0" {
		t.Errorf("EHLO SIZE %v %q, want SIZE 0", ok, size)
	}
	for range 15 {
		id, err := c.Text.Cmd("BOGUS")
		if err != nil {
			t.Fatal(err)
		}
		c.Text.StartResponse(id)
		_, _, err = c.Text.ReadResponse(500)
		c.Text.EndResponse(id)
		if err != nil {
			t.Fatalf("BOGUS: %v, want 500 and the session open", err)
		}
	}
	if err := c.Mail("usr1@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if err := c.Rcpt(fmt.Sprintf("r%d@far.test", i)); err != nil {
			t.Fatalf("recipient %d: %v", i+1, err)
		}
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPSwapsCertificate: new certificate files under the same names
// are presented to the sessions that start after SIGHUP.
func TestSIGHUPSwapsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, err := mta.WriteSelfSigned(dir, []string{"exmail.qq.com"})
	if err != nil {
		t.Fatal(err)
	}
	d, _, p := startReloadable(t, fmt.Sprintf("[gomta]\ntls_cert = %q\ntls_key = %q\n", certFile, keyFile))
	before := serverCert(t, mtatest.Addr(p[0]))
	if _, _, err := mta.WriteSelfSigned(dir, []string{"exmail.qq.com"}); err != nil {
		t.Fatal(err)
	}
	hup(t, d, 1, "config reloaded")
	if after := serverCert(t, mtatest.Addr(p[0])); after == before {
		t.Error("the certificate presented after SIGHUP is the old one")
	}
}

// serverCert is a digest of the certificate an SMTP server presents on STARTTLS.
func serverCert(t *testing.T, addr string) [32]byte {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil { //nolint:gosec // the digest is compared, not verified
		t.Fatal(err)
	}
	st, _ := c.TLSConnectionState()
	return sha256.Sum256(st.PeerCertificates[0].Raw)
}
