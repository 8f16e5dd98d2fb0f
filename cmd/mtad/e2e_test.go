package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// pyPOP reads a mailbox with Python's poplib and prints it as JSON. With a
// fourth argument "dele-rset", it also checks that DELE, RSET and NOOP answer +OK.
const pyPOP = `
import json, poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=10)
out = {"greeting": p.getwelcome().decode()}
out["user"] = p.user(sys.argv[2]).decode()
out["pass"] = p.pass_(sys.argv[3]).decode()
count, size = p.stat()
out["stat"] = [count, size]
out["msgs"] = []
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    out["msgs"].append(b"\r\n".join(lines).decode("utf-8", "replace"))
if len(sys.argv) > 4 and count > 0:
    out["dele"] = p.dele(1).decode()
    out["rset"] = p.rset().decode()
    out["noop"] = p.noop().decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`

type popResult struct {
	Greeting, User, Pass, Dele, Rset, Noop, Quit string
	Stat                                         [2]int
	Msgs                                         []string
}

func popRead(t *testing.T, addr, user, pass string, extra ...string) popResult {
	t.Helper()
	var r popResult
	out := python(t, pyPOP, append([]string{addr, user, pass}, extra...)...)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	return r
}

// waitMail waits until a mailbox holds at least n messages (counted with
// gomta's POP3 client, which is cheap to poll) and returns them as Python's
// poplib reads them.
func waitMail(t *testing.T, addr, user, pass string, n int) []string {
	t.Helper()
	mtatest.WaitMailbox(t, addr, user, pass, n)
	return popRead(t, addr, user, pass).Msgs
}

func message(from, to, subject, body string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@test>\r\n\r\n" + body + "\r\n")
}

func TestCourseRelayAcrossWithNetSMTP(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	err := smtp.SendMail(c.qqSMTPAddr(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		message("usr1@mail.sustech.edu.cn", "usr@gmail.com", "across", "hello gmail\r\n.leading dot"))
	if err != nil {
		t.Fatalf("net/smtp SendMail: %v", err)
	}
	msgs := waitMail(t, c.gmPOPAddr(), "usr@gmail.com", "pass", 1)
	m := msgs[0]
	if !strings.Contains(m, "Subject: across") || !strings.Contains(m, "hello gmail") || !strings.Contains(m, "\r\n.leading dot") {
		t.Errorf("relayed message lost content:\n%s", m)
	}
	if n := strings.Count(m, "Received: "); n != 2 {
		t.Errorf("want a Received header per hop (2), got %d:\n%s", n, m)
	}
	if !strings.Contains(m, "by exmail.qq.com") || !strings.Contains(m, "by gmail.com") {
		t.Errorf("the Received headers do not name both hops:\n%s", m)
	}
	// The JSON logs follow the message across hosts: gmail.com logs the id
	// that exmail.qq.com gave it at acceptance as upstream_msg_id.
	c.gm.WaitLog(t, `"upstream_msg_id"`)
	up := regexp.MustCompile(`"upstream_msg_id":"([^"]+)"`).FindStringSubmatch(c.gm.Log.String())
	if up != nil {
		c.qq.WaitLog(t, `"msg_id":"`+up[1]+`"`)
	}
	if up == nil || !strings.Contains(c.qq.Log.String(), `"msg_id":"`+up[1]+`"`) {
		t.Errorf("gmail.com's log does not name exmail.qq.com's msg_id as upstream_msg_id (%v)", up)
	}
}

func TestCourseSameDomainWithPython(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	out := python(t, `
import smtplib, sys
from email.message import EmailMessage
host, port = sys.argv[1].rsplit(":", 1)
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "same domain"
m.set_content("Bonjour, ça va ?\n")
with smtplib.SMTP(host, int(port), timeout=10) as s:
    print(s.ehlo()[0])
    print(s.send_message(m))
`, c.qqSMTPAddr())
	if !strings.HasPrefix(out, "250\n{}") {
		t.Fatalf("smtplib: %q", out)
	}
	waitMail(t, c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2", 1)
	r := popRead(t, c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2", "dele-rset")
	for name, v := range map[string]string{"greeting": r.Greeting, "user": r.User, "pass": r.Pass, "dele": r.Dele, "rset": r.Rset, "noop": r.Noop, "quit": r.Quit} {
		if !strings.HasPrefix(v, "+OK") {
			t.Errorf("%s: %q, want +OK", name, v)
		}
	}
	if !strings.Contains(r.Msgs[0], "Subject: same domain") {
		t.Errorf("RETR: %q", r.Msgs[0])
	}
	// RSET undid the DELE: the message is still there.
	if r2 := popRead(t, c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2"); r2.Stat[0] != 1 || r2.Stat[1] != r.Stat[1] {
		t.Errorf("after DELE+RSET+QUIT: STAT %v, want %v", r2.Stat, r.Stat)
	}
}

func TestCourseBounceForUnknownRemoteUser(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	err := smtp.SendMail(c.qqSMTPAddr(), nil, "usr1@mail.sustech.edu.cn", []string{"nobody@gmail.com"},
		message("usr1@mail.sustech.edu.cn", "nobody@gmail.com", "lost", "to nobody"))
	if err != nil {
		t.Fatalf("submission must be accepted (the remote user is unknown only to gmail): %v", err)
	}
	m := waitMail(t, c.qqPOPAddr(), "usr1@mail.sustech.edu.cn", "pass1", 1)[0]
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "nobody@gmail.com", "5.1.1", "Action: failed", "Subject: lost"} {
		if !strings.Contains(m, want) {
			t.Errorf("bounce lacks %q:\n%s", want, m)
		}
	}
}

func TestCourseUnknownLocalSenderRefused(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.start()
	cl, err := smtp.Dial(c.qqSMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = cl.Mail("nobody@mail.sustech.edu.cn")
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 {
		t.Fatalf("MAIL FROM unknown local sender: %v, want 550", err)
	}
	if err := cl.Rcpt("usr2@mail.sustech.edu.cn"); err == nil {
		t.Errorf("RCPT after refused MAIL must be refused (503)")
	}
	cl.Quit()
	if r := popRead(t, c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2"); r.Stat[0] != 0 {
		t.Errorf("a refused sender delivered something: %v", r.Stat)
	}
}

func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks := needTool(t, "swaks")
	c := newCourse(t)
	c.start()
	out, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", strconv.Itoa(c.qqSMTP),
		"--from", "usr1@mail.sustech.edu.cn", "--to", "usr@gmail.com,usr2@mail.sustech.edu.cn",
		"--header", "Subject: swaks test", "--body", "sent by swaks", "--timeout", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	for _, mb := range []struct{ addr, user, pass string }{
		{c.gmPOPAddr(), "usr@gmail.com", "pass"}, {c.qqPOPAddr(), "usr2@mail.sustech.edu.cn", "pass2"},
	} {
		m := waitMail(t, mb.addr, mb.user, mb.pass, 1)[0]
		if !strings.Contains(m, "Subject: swaks test") || !strings.Contains(m, "sent by swaks") {
			t.Errorf("%s got:\n%s", mb.user, m)
		}
	}
}

// writeConfig writes a two-server config in the course's schema on free ports,
// with extra gomta settings, and returns its path and the ports.
func writeConfig(t *testing.T, extra string) (string, []int) {
	t.Helper()
	return mtatest.Course(t, strings.TrimPrefix(extra, "[gomta]\n"))
}

func TestOneProcessBothServers(t *testing.T) {
	t.Parallel()
	cfg, p := writeConfig(t, "")
	mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	err := smtp.SendMail(mtatest.Addr(p[2]), nil, "usr@gmail.com", []string{"usr1@mail.sustech.edu.cn"},
		message("usr@gmail.com", "usr1@mail.sustech.edu.cn", "reverse", "from gmail"))
	if err != nil {
		t.Fatal(err)
	}
	waitMail(t, mtatest.Addr(p[1]), "usr1@mail.sustech.edu.cn", "pass1", 1)
}

func TestUntrustedClientCannotRelay(t *testing.T) {
	t.Parallel()
	cfg, p := writeConfig(t, "[gomta]\ntrusted_networks = [\"127.0.0.1/32\"]\n")
	mtad := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", mtatest.Addr(p[0]))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	cl, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	code := func(err error) int {
		var te *textproto.Error
		if errors.As(err, &te) {
			return te.Code
		}
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return 250
	}
	if got := code(cl.Mail("usr1@mail.sustech.edu.cn")); got != 553 {
		t.Errorf("untrusted client using a local sender: %d, want 553", got)
	}
	if got := code(cl.Mail("stranger@example.org")); got != 250 {
		t.Fatalf("foreign sender: %d, want 250", got)
	}
	if got := code(cl.Rcpt("usr@gmail.com")); got != 554 {
		t.Errorf("relay to another domain: %d, want 554", got)
	}
	if got := code(cl.Rcpt("nobody@mail.sustech.edu.cn")); got != 550 {
		t.Errorf("unknown local user: %d, want 550", got)
	}
	if got := code(cl.Rcpt("usr2@mail.sustech.edu.cn")); got != 250 {
		t.Fatalf("local recipient: %d, want 250", got)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(message("stranger@example.org", "usr2@mail.sustech.edu.cn", "inbound", "hi"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cl.Quit()
	msgs := waitMail(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	// Had the relay been taken, the message would still be on its way to
	// gmail.com: wait until every message accepted is done, then look.
	id := receivedID(t, msgs[0])
	mtatest.Eventually(t, "every accepted message processed to the end", func() bool { return mtad.Settled(id) })
	if r := popRead(t, mtatest.Addr(p[3]), "usr@gmail.com", "pass"); r.Stat[0] != 0 {
		t.Errorf("relay denied, yet gmail got %d message(s)", r.Stat[0])
	}
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte(`[server]
"a" = { smtp = 70000, pop = 2110 }
"b" = { smtp = 2025, pop = 2110 }
[accounts."a"]
"not-an-address" = "x"
[gomta]
resolver = "carrier-pigeon"
`), 0o644)
	out, err := exec.Command(mtatest.Mtad(t), "-config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("bad config: exit %v, want non-zero\n%s", err, out)
	}
	for _, want := range []string{"70000", "not-an-address", "carrier-pigeon", "port 2110 is used twice"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	pop := mtatest.FreePorts(t, 1)[0]
	out, err := exec.Command(mtatest.Mtad(t), "-n", "gmail.com", "-s", strconv.Itoa(port), "-p", strconv.Itoa(pop),
		"-data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already in use") || !strings.Contains(string(out), strconv.Itoa(port)) {
		t.Fatalf("port in use: err=%v, output:\n%s", err, out)
	}
}

func TestSIGTERMAnswers421AndExits0(t *testing.T) {
	t.Parallel()
	cfg, p := writeConfig(t, "")
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	conn, err := net.Dial("tcp", mtatest.Addr(p[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	if err := tc.PrintfLine("EHLO test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	code, msg, err := tc.ReadResponse(0)
	if code != 421 {
		t.Errorf("idle session at SIGTERM: %d %q (%v), want 421", code, msg, err)
	}
	if d.Err() != nil {
		t.Errorf("exit: %v, want 0", d.Err())
	}
}

// TestHTTPRequestClosesAtOnce: curl speaking HTTP to the SMTP and POP3 ports
// gets the greeting and then the connection closed: no reply to the request
// line or its headers (which would be a 500 / -ERR per header line otherwise).
func TestHTTPRequestClosesAtOnce(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl")
	cfg, p := writeConfig(t, "")
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	for _, c := range []struct {
		port     int
		greeting string
	}{{p[0], "220 "}, {p[1], "+OK "}} {
		// --http0.9: take whatever comes back as the body.
		out, err := exec.Command(curl, "-sS", "--http0.9", "--max-time", "10", "-H", "X-Probe: 1",
			fmt.Sprintf("http://127.0.0.1:%d/", c.port)).CombinedOutput()
		lines := strings.Split(strings.TrimRight(string(out), "\r\n"), "\r\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], c.greeting) {
			t.Errorf("curl to port %d (%v): got %q, want the greeting alone", c.port, err, out)
		}
	}
	// The daemon is unharmed.
	if err := smtp.SendMail(mtatest.Addr(p[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
		message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "after-http", "ok")); err != nil {
		t.Fatalf("after HTTP probes: %v\n%s", err, d.Log.String())
	}
}

// TestSmugglingNeverMakesASecondMessage sends DATA with every bare end-of-data
// variant followed by a hidden second transaction: the daemon never takes the
// hidden one, and the mailbox gets nothing but the honest message sent after.
func TestSmugglingNeverMakesASecondMessage(t *testing.T) {
	t.Parallel()
	cfg, p := writeConfig(t, "")
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	hidden := "MAIL FROM:<usr1@mail.sustech.edu.cn>\r\nRCPT TO:<usr2@mail.sustech.edu.cn>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
	for _, end := range []string{"\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r", "\r\n\x00.\r\n", "\n.\x00\n"} {
		conn, err := net.Dial("tcp", mtatest.Addr(p[0]))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := textproto.NewConn(conn)
		tc.ReadResponse(220)
		for _, c := range []struct {
			line string
			code int
		}{{"EHLO smuggler", 250}, {"MAIL FROM:<usr1@mail.sustech.edu.cn>", 250}, {"RCPT TO:<usr2@mail.sustech.edu.cn>", 250}, {"DATA", 354}} {
			tc.PrintfLine("%s", c.line)
			if _, _, err := tc.ReadResponse(c.code); err != nil {
				t.Fatalf("%q: %v", c.line, err)
			}
		}
		fmt.Fprintf(conn, "Subject: carrier\r\n\r\ncarrier%s%s.\r\n", end, hidden)
		code, msg, _ := tc.ReadResponse(0)
		if code/100 != 5 {
			t.Errorf("end variant %q: %d %s, want the message refused (5xx)", end, code, msg)
		}
		// Read to the end of the session, so that whatever the server made
		// of the hidden lines happened before the honest message is sent.
		tc.PrintfLine("QUIT")
		for range 20 {
			code, msg, err := tc.ReadResponse(0)
			if code == 0 || code == 221 {
				break
			}
			t.Errorf("end variant %q: %d %s (%v) after the refusal: the hidden lines ran as commands", end, code, msg, err)
		}
		conn.Close()
	}
	if err := smtp.SendMail(mtatest.Addr(p[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
		message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "honest", "ok")); err != nil {
		t.Fatal(err)
	}
	msgs := waitMail(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	// Positive signal: the honest message and every message accepted before
	// it (a smuggled one, had any been taken) are done.
	var honest string
	for _, m := range msgs {
		if strings.Contains(m, "Subject: honest") {
			honest = receivedID(t, m)
		}
	}
	if honest == "" {
		t.Fatalf("the honest message is not among %d delivered: %q", len(msgs), msgs)
	}
	mtatest.Eventually(t, "every accepted message processed to the end", func() bool { return d.Settled(honest) })
	msgs = popRead(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2").Msgs
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: honest") {
		t.Fatalf("mailbox holds %d message(s), want only the honest one: %q", len(msgs), msgs)
	}
}

func TestPprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(mtatest.Mtad(t), "-pprof", "0.0.0.0:0", "-data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback") {
		t.Errorf("-pprof on a public address: %v %s", err, out)
	}
	pp := mtatest.FreePorts(t, 1)[0]
	cfg, p := writeConfig(t, "")
	mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir(), "-pprof", fmt.Sprintf("127.0.0.1:%d", pp)}, append(p, pp)...)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", pp))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Errorf("pprof: %d %.200s", resp.StatusCode, b)
	}
}
