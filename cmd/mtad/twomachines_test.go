package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// twoFdns is the course's fdns.toml with every [P] value an address of the
// machine that serves it, on the course's ports: both machines use it as is.
const twoFdns = `[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."

[P]
"smtp.exmail.qq.com." = "192.0.2.1:1025"
"smtp.gmail.com." = "192.0.2.2:2025"
"pop.exmail.qq.com." = "192.0.2.1:3110"
"pop.gmail.com." = "192.0.2.2:2110"
"mxbiz1.qq.com." = "192.0.2.1:1025"
"gmail-smtp-in.l.google.com." = "192.0.2.2:2025"
`

// twoGomta is the [gomta] table a machine adds to the course's config.toml:
// listen on its own address, trust itself (its users submit from the
// machine, whose source address is that address), and retry soon so that
// the outage below is over within the test.
const twoGomta = `
[gomta]
listen = %q
trusted_networks = ["127.0.0.0/8", "%s/32"]
retry_base = "1s"
retry_max = "2s"
relay_backoff = "1s"
`

// popScript prints every message of a POP3 mailbox, each followed by a line
// "=== end"; argv: host port user password.
const popScript = `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=10)
p.user(sys.argv[3]); p.pass_(sys.argv[4])
for i in range(1, len(p.list()[1]) + 1):
    print(b"\r\n".join(p.retr(i)[1]).decode("utf-8", "replace"))
    print("=== end")
p.quit()
`

type twoMachines struct {
	*machines
	swaks, py string
	config    [2]string   // each machine's config.toml
	args      [2][]string // each machine's mtad flags, for the restart
	d         [2]*nsDaemon
}

// The machines' servers and their ports in the course's config.toml.
var (
	twoServer = [2]string{"exmail.qq.com", "gmail.com"}
	twoSMTP   = [2]string{"1025", "2025"}
	twoPOP    = [2]string{"3110", "2110"}
)

// TestTwoMachines is the course's bonus exchange as two people on two
// machines do it: two network namespaces joined by a veth pair stand for the
// machines, each runs one mtad from the course's config.toml unchanged plus
// a [gomta] table, and both read one fdns.toml whose [P] values are
// host:port across the link. The clients are swaks (submission) and
// Python's poplib (retrieval), run in the machine's namespace as its user
// would run them. It skips, saying why, where it cannot create namespaces.
func TestTwoMachines(t *testing.T) {
	swaks, py := needTool(t, "swaks"), needTool(t, "python3")
	dir := t.TempDir() // before newMachines: removed after its cleanup kills the daemons
	m := &twoMachines{machines: newMachines(t), swaks: swaks, py: py}
	course, err := os.ReadFile(filepath.Join(compatDir, "cs305-config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	fdns := filepath.Join(dir, "fdns.toml")
	if err := os.WriteFile(fdns, []byte(twoFdns), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		cfg := filepath.Join(dir, fmt.Sprintf("config-%d.toml", i))
		if err := os.WriteFile(cfg, append(course, fmt.Sprintf(twoGomta, m.ip[i], m.ip[i])...), 0o644); err != nil {
			t.Fatal(err)
		}
		m.config[i] = cfg
		m.args[i] = []string{"-config", cfg, "-fdns", fdns, "-n", twoServer[i], "-data", filepath.Join(dir, "data-"+twoServer[i])}
		m.d[i] = m.start(i, m.args[i]...)
	}

	// A → B and B → A: submission, relay across the link, POP3 at the far end.
	m.send(0, "usr1@mail.sustech.edu.cn", "usr@gmail.com", "from A to B")
	m.waitMail(1, "usr@gmail.com", "pass", "Subject: from A to B", 1)
	if a := m.d[1].waitFind(t, 0, "message accepted", "mail_from", "usr1@mail.sustech.edu.cn"); !strings.HasPrefix(fmt.Sprint(a["remote"]), m.ip[0]+":") {
		t.Errorf("B's acceptance of A's message is not from %s: %v", m.ip[0], a)
	}
	m.send(1, "usr@gmail.com", "usr2@mail.sustech.edu.cn", "from B to A")
	m.waitMail(0, "usr2@mail.sustech.edu.cn", "pass2", "Subject: from B to A", 1)

	// gomta's agent on B, finding its server as the course's agent does
	// ([agent], then [P]) from the same two files; -no-tls because the
	// server offers no STARTTLS and the agent talks to its own machine.
	agent := m.build(dir, "agent")
	if out, err := m.exec(1, agent, "-config", m.config[1], "-fdns", fdns, "-e", "usr@gmail.com", "-p", "pass", "-no-tls",
		"send", "-to", "usr1@mail.sustech.edu.cn", "-subject", "agent from B", "-body", "sent by the agent"); err != nil {
		t.Fatalf("agent in %s: %v\n%s", m.ns[1], err, out)
	}
	m.waitMail(0, "usr1@mail.sustech.edu.cn", "pass1", "Subject: agent from B", 1)
	if out, err := m.exec(0, agent, "-config", m.config[0], "-fdns", fdns, "-e", "usr1@mail.sustech.edu.cn", "-p", "pass1", "-no-tls",
		"pop", "retr", "1"); err != nil || !strings.Contains(out, "agent from B") {
		t.Fatalf("agent pop retr 1 in %s: %v\n%s", m.ns[0], err, out)
	}

	// An unknown user on B: B refuses the RCPT, A bounces to the sender.
	m.send(0, "usr1@mail.sustech.edu.cn", "nobody@gmail.com", "to nobody")
	bounce := m.waitMail(0, "usr1@mail.sustech.edu.cn", "pass1", "multipart/report", 1)
	for _, want := range []string{"Final-Recipient: rfc822; nobody@gmail.com", "Status: 5.1.1", "Subject: to nobody"} {
		if !strings.Contains(bounce, want) {
			t.Errorf("bounce lacks %q:\n%s", want, bounce)
		}
	}

	// B is down: A queues and defers; B returns: A delivers on its retry.
	m.d[1].kill()
	from := len(m.d[0].log.String())
	m.send(0, "usr2@mail.sustech.edu.cn", "usr@gmail.com", "while B was down")
	id := fmt.Sprint(m.d[0].waitFind(t, from, "relay deferred", "rcpt", "usr@gmail.com")["msg_id"])
	m.d[1] = m.start(1, m.args[1]...)
	m.waitMail(1, "usr@gmail.com", "pass", "Subject: while B was down", 1)
	m.d[1].waitFind(t, 0, "message accepted", "upstream_msg_id", id) // B after its restart took A's message
	mtatest.Eventually(t, "relay delivered of "+id+" in A's log", func() bool {
		n, _ := m.d[0].find(from, "relay delivered", "msg_id", id)["attempt"].(float64)
		return n >= 2
	})
	m.traceAcross(dir, id)
}

// build builds gomta/cmd/<name> into dir and returns the binary's path.
func (m *twoMachines) build(dir, name string) string {
	m.t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "gomta/cmd/"+name).CombinedOutput(); err != nil {
		m.t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// traceAcross runs mtalog trace on both machines' logs, as the two people
// would on the files they exchange, and checks that it follows message id
// from A's deferral to B's mailbox over a link both sides agree on.
func (m *twoMachines) traceAcross(dir, id string) {
	m.t.Helper()
	mtalog := m.build(dir, "mtalog")
	// The daemons write their log lines a little after the fact: read
	// the logs again until the trace reaches the retrieval at B.
	var out []byte
	defer func() {
		if m.t.Failed() {
			m.t.Logf("mtalog trace %s A.log B.log:\n%s", id, out)
		}
	}()
	wants := []string{"exmail.qq.com  " + id + "  deferred", "(confirmed link)", "relayed", "delivered", "retrieved"}
	mtatest.Eventually(m.t, "mtalog trace across both logs", func() bool {
		args := []string{"trace", id}
		for i, d := range m.d {
			f := filepath.Join(dir, twoServer[i]+".log")
			if os.WriteFile(f, []byte(d.log.String()), 0o644) != nil {
				return false
			}
			args = append(args, f)
		}
		var err error
		if out, err = exec.Command(mtalog, args...).CombinedOutput(); err != nil {
			return false
		}
		for _, w := range wants {
			if !strings.Contains(string(out), w) {
				return false
			}
		}
		return true
	})
	m.t.Logf("mtalog trace %s A.log B.log:\n%s", id, out)
}

// send submits one message on machine i with swaks, from its own machine.
func (m *twoMachines) send(i int, from, to, subject string) {
	m.t.Helper()
	out, err := m.exec(i, m.swaks, "--server", m.ip[i], "--port", twoSMTP[i],
		"--from", from, "--to", to, "--header", "Subject: "+subject, "--body", "sent by swaks in "+m.ns[i],
		"--timeout", "10")
	if err != nil {
		m.t.Fatalf("swaks in %s: %v\n%s", m.ns[i], err, out)
	}
}

// waitMail waits until the mailbox of user on machine i, read over POP3 in
// that machine, holds n messages containing want; it returns the last one.
func (m *twoMachines) waitMail(i int, user, pass, want string, n int) string {
	m.t.Helper()
	var found []string
	var last string
	mtatest.Eventually(m.t, fmt.Sprintf("%d message(s) with %q for %s", n, want, user), func() bool {
		out, err := m.exec(i, m.py, "-c", popScript, m.ip[i], twoPOP[i], user, pass)
		last = out
		if err != nil {
			return false
		}
		found = found[:0]
		for _, msg := range strings.Split(out, "=== end\n") {
			if strings.Contains(msg, want) {
				found = append(found, msg)
			}
		}
		return len(found) >= n
	})
	if len(found) != n {
		m.t.Fatalf("%d messages with %q for %s, want %d:\n%s", len(found), want, user, n, last)
	}
	return found[n-1]
}
