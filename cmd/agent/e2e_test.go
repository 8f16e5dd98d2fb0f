package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// mtadDaemon is a real mtad (mtatest's build) started on free ports with two
// mail hosts (the course's domains) in one process.
type mtadDaemon struct {
	*mtatest.Daemon
	config string
	pop    map[string]string // mail domain → its host's POP3 address
}

// startMtad starts mtad; a daemon that does not build fails the test.
func startMtad(t *testing.T) *mtadDaemon {
	t.Helper()
	return startMtadWith(t, nil)
}

// startMtadWith is startMtad with gomta's own settings: gomta, when not nil,
// is given the mtad binary, the config file and a scratch directory (to run
// mtad -gen-cert, say) and returns a [gomta] table for the config.
func startMtadWith(t *testing.T, gomta func(bin, config, dir string) string) *mtadDaemon {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	dir := t.TempDir()
	ports := mtatest.FreePorts(t, 4)
	cfg := fmt.Sprintf(`
[agent]
"mail.sustech.edu.cn" = { smtp = "smtp.exmail.qq.com", pop = "pop.exmail.qq.com" }
"gmail.com" = { smtp = "smtp.gmail.com", pop = "pop.gmail.com" }

[server]
"exmail.qq.com" = { smtp = %[1]d, pop = %[2]d }
"gmail.com" = { smtp = %[3]d, pop = %[4]d }

[accounts."exmail.qq.com"]
"usr1@mail.sustech.edu.cn" = "pass1"
"usr2@mail.sustech.edu.cn" = "pass2"

[accounts."gmail.com"]
"usr@gmail.com" = "pass"

[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."

[P]
"smtp.exmail.qq.com." = "%[1]d"
"pop.exmail.qq.com." = "%[2]d"
"smtp.gmail.com." = "%[3]d"
"pop.gmail.com." = "%[4]d"
"mxbiz1.qq.com." = "%[1]d"
"gmail-smtp-in.l.google.com." = "%[3]d"
`, ports[0], ports[1], ports[2], ports[3])
	d := &mtadDaemon{config: filepath.Join(dir, "config.toml"),
		pop: map[string]string{"mail.sustech.edu.cn": mtatest.Addr(ports[1]), "gmail.com": mtatest.Addr(ports[3])}}
	if gomta != nil {
		if err := os.WriteFile(d.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg += gomta(mtatest.Mtad(t), d.config, dir)
	}
	if err := os.WriteFile(d.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Daemon = mtatest.StartDaemon(t, []string{"-config", d.config, "-data", filepath.Join(dir, "data"), "-log-level", "debug"}, ports...)
	return d
}

// agent runs the agent in-process against the daemon.
func (d *mtadDaemon) agent(t *testing.T, stdin, email, pass string, rest ...string) (string, string, int) {
	t.Helper()
	return runAgent(t, stdin, append([]string{"-config", d.config, "-e", email, "-p", pass, "-timeout", "20s"}, rest...)...)
}

// waitCount waits until email's mailbox holds n messages (delivery is
// asynchronous).
func (d *mtadDaemon) waitCount(t *testing.T, email, pass string, n int) {
	t.Helper()
	mtatest.WaitMailbox(t, d.pop[email[strings.LastIndexByte(email, '@')+1:]], email, pass, n)
}

const (
	usr1 = "usr1@mail.sustech.edu.cn"
	usr2 = "usr2@mail.sustech.edu.cn"
	gusr = "usr@gmail.com"
)

func TestE2EInteractive(t *testing.T) {
	t.Parallel()
	d := startMtad(t)
	stdin := strings.Join([]string{"smtp", usr2, gusr, "", "Über the wire", "Hello from usr1, ça va?", "exit"}, "\n") + "\n"
	out, errOut, code := d.agent(t, stdin, usr1, "pass1")
	if code != exitOK || errOut != "" {
		t.Fatalf("send: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	for _, want := range []string{usr2 + ": accepted\n", gusr + ": accepted\n", "Message sent to 2 recipients.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	d.waitCount(t, usr2, "pass2", 1) // same domain
	d.waitCount(t, gusr, "pass", 1)  // relayed to the other domain

	stdin = strings.Join([]string{"pop", "stat", "retr 1", "dele 1", "stat", "rset", "stat", "retr 9", "bogus", "quit", "exit"}, "\n") + "\n"
	out, errOut, code = d.agent(t, stdin, gusr, "pass")
	if code != exitOK || errOut != "" {
		t.Fatalf("pop: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"[smtp|pop|exit]>>> +OK ",
		"Logged in as " + gusr + " (no TLS, AUTH PLAIN): 1 messages (",
		"From:    " + usr1 + "\nTo:      " + usr2 + ", " + gusr + "\n",
		"Subject: Über the wire\n\nHello from usr1, ça va?\n",
		"Message 1 marked for deletion",
		"[pop]>>> 0 messages (0 bytes)\n",
		"No message is marked for deletion any more.\n[pop]>>> 1 messages (",
		"[pop]>>> -ERR ",
		"Unknown command \"bogus\".\nCommands:",
		"Logged out; deletions are done.\n[smtp|pop|exit]>>> ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// rset undid the deletion: the message is still there; now delete it.
	out, errOut, code = d.agent(t, "pop\ndele 1\nquit\nexit\n", gusr, "pass")
	if code != exitOK || errOut != "" || !strings.Contains(out, "Logged in as "+gusr+" (no TLS, AUTH PLAIN): 1 messages") {
		t.Fatalf("dele: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	out, _, code = d.agent(t, "", gusr, "pass", "pop", "stat")
	if code != exitOK || out != "0 messages (0 bytes)\n" {
		t.Errorf("after dele+quit: exit %d, stdout %q", code, out)
	}
}

func TestE2EScript(t *testing.T) {
	t.Parallel()
	d := startMtad(t)
	// Unknown local user: refused at RCPT.
	out, errOut, code := d.agent(t, "", usr1, "pass1", "send", "-to", "nobody@mail.sustech.edu.cn", "-subject", "s", "-body", "b")
	if code != exitRefused || out != "" || !strings.Contains(errOut, "nobody@mail.sustech.edu.cn: refused: 550") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("unknown local: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Unknown remote user: accepted here, refused by the other host, bounced.
	out, errOut, code = d.agent(t, "", usr1, "pass1", "send", "-to", "nobody@gmail.com", "-subject", "lost letter", "-body", "b")
	if code != exitOK || errOut != "" || out != "nobody@gmail.com: accepted\n" {
		t.Fatalf("unknown remote: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.waitCount(t, usr1, "pass1", 1)
	out, errOut, code = d.agent(t, "", usr1, "pass1", "pop", "list")
	if code != exitOK || !strings.HasPrefix(out, "1 ") {
		t.Errorf("pop list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = d.agent(t, "", usr1, "pass1", "pop", "retr", "1", "-json")
	var m popJSONMessage
	if code != exitOK || json.Unmarshal([]byte(out), &m) != nil || !strings.Contains(m.Body, "nobody@gmail.com") {
		t.Errorf("bounce: exit %d, stderr %q, message %+v", code, errOut, m)
	}
	// Wrong password.
	out, errOut, code = d.agent(t, "", usr2, "wrong", "pop", "stat")
	if code != exitRefused || out != "" || !strings.HasPrefix(errOut, "agent: login as "+usr2+" failed: the server said: ") {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Attachment, read back as JSON.
	att := writeFile(t, "notes.txt", "attached notes")
	out, errOut, code = d.agent(t, "", usr1, "pass1", "send", "-to", usr2, "-subject", "with file", "-body", "see file", "-attach", att)
	if code != exitOK || errOut != "" {
		t.Fatalf("attach: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.waitCount(t, usr2, "pass2", 1)
	out, _, code = d.agent(t, "", usr2, "pass2", "pop", "retr", "1", "-json")
	if err := json.Unmarshal([]byte(out), &m); code != exitOK || err != nil || m.Subject != "with file" || m.Body != "see file" ||
		len(m.Attachments) != 1 || m.Attachments[0].Name != "notes.txt" {
		t.Errorf("attachment read back: exit %d, %q", code, out)
	}
}
