package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// untrusted is a loopback source address outside the daemon's trusted
// network (127.0.0.1/32): the agent connects from it with -source.
const untrusted = "127.0.0.2"

// startTLSMtad runs mtad with its self-signed certificate made at start and
// only 127.0.0.1 trusted.
func startTLSMtad(t *testing.T) *mtadDaemon {
	t.Helper()
	return startMtadWith(t, func(_, _, _ string) string {
		return "\n[gomta]\ntls_self_signed = true\ntrusted_networks = [\"127.0.0.1/32\"]\n"
	})
}

// genCert runs mtad -gen-cert into a new directory and returns it.
func genCert(t *testing.T, bin, config string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(bin, "-config", config, "-gen-cert", dir).CombinedOutput(); err != nil {
		t.Fatalf("mtad -gen-cert: %v\n%s", err, out)
	}
	return dir
}

func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestE2EUntrustedWithAuth: from outside the trusted network the agent
// upgrades with STARTTLS/STLS, logs in (AUTH; AUTH PLAIN for POP3), and may
// then send to the other domain and read the mail back.
func TestE2EUntrustedWithAuth(t *testing.T) {
	t.Parallel()
	d := startTLSMtad(t)
	stdin := strings.Join([]string{"smtp", gusr, "", "over TLS", "hello from afar", "exit"}, "\n") + "\n"
	out, errOut, code := d.agent(t, stdin, usr1, "pass1", "-source", untrusted)
	if code != exitOK || errOut != "" {
		t.Fatalf("send: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	mustContain(t, "stdout", out,
		"Connected to the SMTP server smtp.exmail.qq.com (TLS), logged in as "+usr1+" with AUTH.\n",
		"Note: the server's certificate was not verified: the server is on loopback (give -ca FILE to verify it).\n",
		gusr+": accepted\nMessage sent to 1 recipient.\n")
	d.waitCount(t, gusr, "pass", 1)

	out, errOut, code = d.agent(t, "pop\nretr 1\nquit\nexit\n", gusr, "pass", "-source", untrusted)
	if code != exitOK || errOut != "" {
		t.Fatalf("pop: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	mustContain(t, "stdout", out,
		"Logged in as "+gusr+" (TLS, AUTH PLAIN): 1 messages (",
		"Note: the server's certificate was not verified: the server is on loopback",
		"Subject: over TLS\n\nhello from afar\n")

	// Scripted, the same: no status lines, the mail read back over STLS.
	out, errOut, code = d.agent(t, "", gusr, "pass", "-source", untrusted, "pop", "retr", "1")
	if code != exitOK || errOut != "" || !strings.Contains(out, "hello from afar") {
		t.Errorf("pop retr: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

// TestE2EUntrustedWithoutAuth: the same sends without a login are refused,
// and the agent says why in one sentence.
func TestE2EUntrustedWithoutAuth(t *testing.T) {
	t.Parallel()
	d := startTLSMtad(t)
	for _, tc := range []struct {
		name  string
		args  []string
		email string
		want  string
	}{
		// No password: no login; the local sender is not this client's.
		{"no password", []string{"-e", usr1, "-s", "smtp.exmail.qq.com"}, usr1,
			"agent: message not sent: the server said: 553 5.7.1 sender address not owned by this client " +
				"(you are not logged in: no -p PASSWORD was given)\n"},
		// -no-tls: AUTH is offered only under TLS off the trusted network.
		{"no tls", []string{"-e", usr1, "-p", "pass1", "-no-tls"}, usr1,
			"agent: message not sent: the server said: 553 5.7.1 sender address not owned by this client " +
				"(you are not logged in: the server offers no AUTH without TLS, and -tls=false was given)\n"},
		// A foreign sender without a login: the relay denial itself.
		{"relay", []string{"-e", "stranger@example.org", "-s", "smtp.exmail.qq.com"}, "",
			"agent: " + gusr + ": refused: 554 5.7.1 relay access denied (you are not logged in: no -p PASSWORD was given)\n"},
	} {
		args := append([]string{"-config", d.config, "-timeout", "20s", "-source", untrusted}, tc.args...)
		args = append(args, "send", "-to", gusr, "-subject", "s", "-body", "b")
		out, errOut, code := runAgent(t, "", args...)
		if code != exitRefused || out != "" || errOut != tc.want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want stderr %q", tc.name, code, out, errOut, tc.want)
		}
	}

	// A wrong password: the login is refused, in one sentence, and nothing is sent.
	out, errOut, code := d.agent(t, "", usr1, "wrong", "-source", untrusted, "send", "-to", gusr, "-subject", "s", "-body", "b")
	if code != exitRefused || out != "" || strings.Count(errOut, "\n") != 1 ||
		!strings.HasPrefix(errOut, "agent: the SMTP server smtp.exmail.qq.com (127.0.0.1:") ||
		!strings.Contains(errOut, ") refused the login as "+usr1+": the server said: 535 ") {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Interactive: the same sentence, and the agent goes on.
	out, errOut, code = d.agent(t, "smtp\n"+gusr+"\n\ns\nc\nexit\n", usr1, "wrong", "-source", untrusted)
	if code != exitOK || errOut != "" {
		t.Fatalf("interactive wrong password: exit %d, stderr %q", code, errOut)
	}
	mustContain(t, "stdout", out, "Content: Message not sent: the SMTP server smtp.exmail.qq.com (",
		") refused the login as "+usr1+": the server said: 535 ", "\n[smtp|pop|exit]>>> ")

	// POP3 without TLS from outside: the server wants STLS first.
	out, errOut, code = d.agent(t, "", gusr, "pass", "-source", untrusted, "-no-tls", "pop", "stat")
	if code != exitRefused || out != "" || !strings.HasPrefix(errOut, "agent: login as "+gusr+" failed: the server said: ") {
		t.Errorf("pop -no-tls: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestE2ECertificates: -ca verifies mtad -gen-cert's certificate; -ca with
// another certificate fails with a sentence saying how to fix it;
// -insecure warns once.
func TestE2ECertificates(t *testing.T) {
	t.Parallel()
	var good, other string
	d := startMtadWith(t, func(bin, config, _ string) string {
		dir := genCert(t, bin, config)
		good = filepath.Join(dir, "cert.pem")
		other = filepath.Join(genCert(t, bin, config), "cert.pem")
		return "\n[gomta]\ntls_cert = \"" + filepath.Join(dir, "cert.pem") + "\"\ntls_key = \"" + filepath.Join(dir, "key.pem") + "\"\n"
	})

	stdin := "smtp\n" + gusr + "\n\nverified\nc\npop\nquit\nexit\n"
	out, errOut, code := d.agent(t, stdin, usr1, "pass1", "-ca", good)
	if code != exitOK || errOut != "" {
		t.Fatalf("-ca: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	mustContain(t, "stdout", out, "Connected to the SMTP server smtp.exmail.qq.com (TLS), logged in as "+usr1+" with AUTH.\n",
		"Logged in as "+usr1+" (TLS, AUTH PLAIN): ")
	if strings.Contains(out, "Note:") {
		t.Errorf("a verified certificate got a note:\n%s", out)
	}

	for _, args := range [][]string{{"pop", "stat"}, {"send", "-to", gusr, "-subject", "s", "-body", "b"}} {
		out, errOut, code = d.agent(t, "", usr1, "pass1", append([]string{"-ca", other}, args...)...)
		if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, "agent: cannot verify the certificate of the ") ||
			!strings.Contains(errOut, "give -ca FILE with its certificate (mtad -gen-cert DIR writes DIR/cert.pem), or -insecure to skip the check\n") {
			t.Errorf("%v with the wrong -ca: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}

	out, errOut, code = d.agent(t, stdin, usr1, "pass1", "-insecure")
	if code != exitOK || errOut != "agent: warning: not verifying the server's certificate\n" {
		t.Fatalf("-insecure: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if n := strings.Count(out, "Note: the server's certificate was not verified: -insecure was given.\n"); n != 2 {
		t.Errorf("-insecure: %d notes, want 2 (SMTP, POP3):\n%s", n, out)
	}
}
