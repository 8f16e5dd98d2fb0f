package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gomta/mta/control"
	"gomta/mta/mtatest"
)

func TestMain(m *testing.M) { os.Exit(mtatest.WithMtad(m).Run()) }

// pair is two mail hosts of one config run as two mtad processes, so that
// the far one (gmail.com) can be down while the near one queues for it.
type pair struct {
	t          *testing.T
	cfg        string
	ports      []int // qq smtp, qq pop3, gmail smtp, gmail pop3
	nearDir    string
	farDir     string
	near       *mtatest.Daemon
	far        *mtatest.Daemon
	socket     string
	transcript *bytes.Buffer
}

// newPair writes the config: the retry waits are an hour, so that a
// message deferred once stays deferred for the whole test unless retried;
// the relay's back-off is cut short, as the test starts the far host again
// at once and expects the next message to reach it.
func newPair(t *testing.T) *pair {
	t.Helper()
	path, p := mtatest.Course(t, "retry = [\"1h\", \"1h\", \"1h\"]\nrelay_backoff = \"1ms\"")
	dir := t.TempDir()
	return &pair{t: t, cfg: path, ports: p, nearDir: filepath.Join(dir, "near"), farDir: filepath.Join(dir, "far"),
		socket: filepath.Join(dir, "near", "exmail.qq.com", "control.sock"), transcript: &bytes.Buffer{}}
}

func (p *pair) startNear() {
	p.near = mtatest.StartDaemon(p.t, []string{"-config", p.cfg, "-n", "exmail.qq.com", "-data", p.nearDir},
		p.ports[0], p.ports[1])
	// The listeners open before the control socket: wait for it too.
	mtatest.Eventually(p.t, "the control socket", func() bool {
		_, _, code := p.ctlQuiet("status")
		return code == exitOK
	})
}

func (p *pair) startFar() {
	p.far = mtatest.StartDaemon(p.t, []string{"-config", p.cfg, "-n", "gmail.com", "-data", p.farDir},
		p.ports[2], p.ports[3])
}

func (p *pair) ctlQuiet(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(append([]string{"-socket", p.socket}, args...), &o, &e)
	return o.String(), e.String(), code
}

// ctl runs mtactl in this process against the near daemon and keeps a
// transcript of it.
func (p *pair) ctl(args ...string) (stdout, stderr string, code int) {
	stdout, stderr, code = p.ctlQuiet(args...)
	fmt.Fprintf(p.transcript, "$ mtactl %s\n%s%s[exit %d]\n", strings.Join(args, " "), stdout, stderr, code)
	return stdout, stderr, code
}

// send submits a message from usr1 at the near host to usr@gmail.com.
func (p *pair) send(subject string) {
	p.t.Helper()
	msg := "From: usr1@mail.sustech.edu.cn\r\nTo: usr@gmail.com\r\nSubject: " + subject + "\r\n\r\nhello\r\n"
	if err := smtp.SendMail(mtatest.Addr(p.ports[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		[]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// list is `mtactl queue list -json`, parsed.
func (p *pair) list() []control.Message {
	p.t.Helper()
	out, errOut, code := p.ctlQuiet("queue", "list", "-json")
	if code != exitOK {
		p.t.Fatalf("queue list -json: exit %d: %s", code, errOut)
	}
	var ms []control.Message
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m control.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			p.t.Fatalf("queue list -json line %q: %v", sc.Text(), err)
		}
		ms = append(ms, m)
	}
	return ms
}

// deferred waits until the queue holds n messages, each deferred after at
// least one attempt, and returns them.
func (p *pair) deferred(n int) []control.Message {
	p.t.Helper()
	var ms []control.Message
	mtatest.Eventually(p.t, fmt.Sprintf("%d deferred messages", n), func() bool {
		ms = p.list()
		if len(ms) != n {
			return false
		}
		for _, m := range ms {
			if m.Attempts < 1 || m.Active {
				return false
			}
		}
		return true
	})
	return ms
}

func (p *pair) report() {
	p.t.Logf("transcript:\n%s", p.transcript.String())
}

func TestQueueListShowHoldRelease(t *testing.T) {
	mtatest.NeedLocal(t)
	t.Parallel()
	p := newPair(t)
	p.startNear()
	p.send("first")
	m := p.deferred(1)[0]
	r := m.Recipients
	if m.Host != "exmail.qq.com" || m.From != "usr1@mail.sustech.edu.cn" || m.Size == 0 || m.Held ||
		m.ArrivalTime.IsZero() || m.NextAttempt.Before(time.Now().Add(50*time.Minute)) || len(r) != 1 ||
		r[0].Address != "usr@gmail.com" || r[0].Status != "deferred" || !strings.Contains(strings.ToLower(r[0].LastReply), "connection refused") {
		t.Fatalf("queue list -json: %+v", m)
	}
	p.ctl("queue", "list")
	out, _, code := p.ctl("queue", "show", m.MsgID)
	if code != exitOK || !strings.Contains(out, "Subject: first") || strings.Contains(out, "hello") ||
		!strings.Contains(out, "#1  usr@gmail.com  deferred") {
		t.Fatalf("queue show: exit %d\n%s", code, out)
	}
	if out, _, code := p.ctl("queue", "hold", m.MsgID); code != exitOK || out != m.MsgID+": held (exmail.qq.com)\n" {
		t.Fatalf("queue hold: exit %d %q", code, out)
	}

	// The far host is back. retry -all leaves the held message alone, and
	// a later message to the same host is delivered while it stays.
	p.startFar()
	if out, _, code := p.ctl("queue", "retry", "-all"); code != exitOK || !strings.Contains(out, "held: not retried") {
		t.Fatalf("queue retry -all: exit %d %q", code, out)
	}
	p.send("second")
	mtatest.WaitMailbox(t, mtatest.Addr(p.ports[3]), "usr@gmail.com", "pass", 1)
	if ms := p.list(); len(ms) != 1 || !ms[0].Held || ms[0].Attempts != 1 || ms[0].Recipients[0].Status != "held" {
		t.Fatalf("after a later message was delivered: %+v", ms)
	}

	// Held across a restart, next attempt kept; then released and delivered.
	p.near.Stop(t)
	p.startNear()
	if ms := p.list(); len(ms) != 1 || !ms[0].Held || !ms[0].NextAttempt.Equal(m.NextAttempt) {
		t.Fatalf("after restart: %+v, want held, next attempt %v", ms, m.NextAttempt)
	}
	p.ctl("queue", "list")
	if out, _, code := p.ctl("queue", "release", m.MsgID); code != exitOK || out != m.MsgID+": released (exmail.qq.com)\n" {
		t.Fatalf("queue release: exit %d %q", code, out)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p.ports[3]), "usr@gmail.com", "pass", 2)
	mtatest.Eventually(t, "an empty queue", func() bool { return len(p.list()) == 0 })
	p.ctl("queue", "list")
	p.report()
}

// TestNextAttemptSurvivesRestart: a restart keeps a deferred message's next
// attempt (an hour away); retry -all makes it due, and it is delivered.
func TestNextAttemptSurvivesRestartAndRetryAll(t *testing.T) {
	mtatest.NeedLocal(t)
	t.Parallel()
	p := newPair(t)
	p.startNear()
	p.send("later")
	m := p.deferred(1)[0]
	p.near.Stop(t)
	p.startFar()
	p.startNear()
	ms := p.list()
	if len(ms) != 1 || !ms[0].NextAttempt.Equal(m.NextAttempt) || ms[0].Attempts != 1 {
		t.Fatalf("after restart: %+v, want attempt 1 with next attempt %v", ms, m.NextAttempt)
	}
	out, _, code := p.ctl("queue", "retry", "-all")
	if code != exitOK || out != m.MsgID+": due now (exmail.qq.com)\n" {
		t.Fatalf("queue retry -all: exit %d %q", code, out)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p.ports[3]), "usr@gmail.com", "pass", 1)
	p.report()
}

func TestDropBounceAndExitCodes(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	p.startNear()
	p.send("dropped")
	m := p.deferred(1)[0]
	const unknown = "06h4ijibtdit2fjk3vc0"
	_, errOut, code := p.ctl("queue", "hold", unknown)
	if code != exitRefused || errOut != "mtactl: "+unknown+": no such message in the queue\n" {
		t.Fatalf("hold of an unknown id: exit %d %q", code, errOut)
	}
	if _, errOut, code := p.ctl("queue", "show", unknown); code != exitRefused || !strings.Contains(errOut, "no such message") {
		t.Fatalf("show of an unknown id: exit %d %q", code, errOut)
	}
	out, errOut, code := p.ctl("queue", "drop", "-bounce", m.MsgID, unknown)
	if code != exitRefused || out != m.MsgID+": dropped, bounce queued to <usr1@mail.sustech.edu.cn> (exmail.qq.com)\n" ||
		!strings.Contains(errOut, unknown) {
		t.Fatalf("queue drop -bounce: exit %d %q %q", code, out, errOut)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p.ports[1]), "usr1@mail.sustech.edu.cn", "pass1", 1)
	mtatest.Eventually(t, "an empty queue", func() bool { return len(p.list()) == 0 })

	// status: one SMTP session open now, the queue empty.
	c, err := net.Dial("tcp", mtatest.Addr(p.ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	out, _, code = p.ctl("status", "-json")
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitOK {
		t.Fatalf("status -json: exit %d %q %v", code, out, err)
	}
	h := st.Hosts[0]
	if len(st.Hosts) != 1 || h.Name != "exmail.qq.com" || h.SMTPSessions != 1 || h.Listeners["smtp"] != mtatest.Addr(p.ports[0]) ||
		h.Queue.Messages != 0 || st.ConfigFile != p.cfg || !strings.HasPrefix(st.Version, "gomta ") {
		t.Fatalf("status: %+v", st)
	}
	p.ctl("status")
	if out, errOut, code := p.ctl("reload"); code != 0 || out != "reloaded: nothing changed\n" {
		t.Fatalf("reload: exit %d %q %q", code, out, errOut)
	}
	// status says when the config in force was loaded: the reload's time.
	out, _, _ = p.ctl("status", "-json")
	var st2 control.Status
	if err := json.Unmarshal([]byte(out), &st2); err != nil || !st2.ConfigLoaded.After(st.ConfigLoaded) {
		t.Fatalf("config loaded %v before the reload, %v after: %v", st.ConfigLoaded, st2.ConfigLoaded, err)
	}
	// A bad config is refused whole: exit 1, every problem listed, and the
	// daemon keeps serving with the old one.
	good, err := os.ReadFile(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "[gomta]", "[gomta]\nmax_errors = -3", 1)
	if err := os.WriteFile(p.cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := p.ctl("reload"); code != exitRefused || !strings.Contains(errOut, "max_errors") {
		t.Fatalf("reload of a bad config: exit %d %q", code, errOut)
	}
	if err := os.WriteFile(p.cfg, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := p.ctl("status"); code != 0 {
		t.Fatalf("status after a refused reload: exit %d", code)
	}

	// No daemon: exit 2, one line naming the socket.
	gone := filepath.Join(t.TempDir(), "control.sock")
	var o, e bytes.Buffer
	if code := run([]string{"-socket", gone, "status"}, &o, &e); code != exitUnreachable ||
		!strings.HasPrefix(e.String(), "mtactl: cannot reach mtad at "+gone+": ") || strings.Count(e.String(), "\n") != 1 {
		t.Fatalf("no daemon: exit %d %q", code, e.String())
	}
	fmt.Fprintf(p.transcript, "$ mtactl -socket %s status\n%s[exit 2]\n", gone, e.String())
	p.report()
}
