package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mtadBin is the daemon built once for the black-box tests of this package.
var mtadBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mtad-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mtadBin = filepath.Join(dir, "mtad")
	out, err := exec.Command("go", "build", "-race", "-o", mtadBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mtad: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const compatDir = "../../configs" // cs305-config.toml, cs305-fdns.toml: the course's files unchanged

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// course is the course's two servers, each its own mtad process started from
// the course's config.toml unchanged, with -s/-p picking free ports and an
// fdns.toml that points the [P] records at them.
type course struct {
	t                 *testing.T
	dir, fdns, config string
	qqSMTP, qqPOP     int // exmail.qq.com: @mail.sustech.edu.cn
	gmSMTP, gmPOP     int // gmail.com
	qq, gm            *daemon
	extraArgs         []string
}

func newCourse(t *testing.T) *course {
	t.Helper()
	p := freePorts(t, 4)
	c := &course{t: t, dir: t.TempDir(), config: filepath.Join(compatDir, "cs305-config.toml"),
		qqSMTP: p[0], qqPOP: p[1], gmSMTP: p[2], gmPOP: p[3]}
	fdns, err := os.ReadFile(filepath.Join(compatDir, "cs305-fdns.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(fdns)
	for _, r := range []struct{ from, to int }{{1025, c.qqSMTP}, {3110, c.qqPOP}, {2025, c.gmSMTP}, {2110, c.gmPOP}} {
		s = strings.ReplaceAll(s, fmt.Sprintf("%q", strconv.Itoa(r.from)), fmt.Sprintf("%q", strconv.Itoa(r.to)))
	}
	c.fdns = filepath.Join(c.dir, "fdns.toml")
	if err := os.WriteFile(c.fdns, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *course) start() {
	c.qq = c.startOne("exmail.qq.com", c.qqSMTP, c.qqPOP)
	c.gm = c.startOne("gmail.com", c.gmSMTP, c.gmPOP)
}

func (c *course) startOne(name string, smtpPort, popPort int) *daemon {
	args := append([]string{"-config", c.config, "-fdns", c.fdns, "-n", name,
		"-s", strconv.Itoa(smtpPort), "-p", strconv.Itoa(popPort),
		"-data", filepath.Join(c.dir, "data-"+name)}, c.extraArgs...)
	return startDaemon(c.t, args, smtpPort, popPort)
}

func (c *course) qqSMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(c.qqSMTP) }
func (c *course) qqPOPAddr() string  { return "127.0.0.1:" + strconv.Itoa(c.qqPOP) }
func (c *course) gmSMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(c.gmSMTP) }
func (c *course) gmPOPAddr() string  { return "127.0.0.1:" + strconv.Itoa(c.gmPOP) }

// daemon is one running mtad process.
type daemon struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitLog waits (at most 5 s) until the daemon's output contains s: log lines
// are written in batches, at most 0.2 s late.
func (d *daemon) waitLog(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.log.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// startDaemon runs mtad with args and waits (at most 5 s; the contract is 1 s)
// until every port in wait accepts connections.
func startDaemon(t *testing.T, args []string, wait ...int) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(mtadBin, args...), log: &syncBuffer{}, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("mtad %v log:\n%s", args, d.log.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range wait {
		for {
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 100*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-d.done:
				t.Fatalf("mtad exited early (%v):\n%s", d.err, d.log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("mtad not listening on %d after 5s:\n%s", p, d.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return d
}

// stop sends SIGTERM and waits for the exit; it reports a non-zero exit.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.err != nil {
			t.Errorf("mtad exit after SIGTERM: %v", d.err)
		}
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("mtad did not stop within 15s of SIGTERM")
	}
}

// kill sends SIGKILL and waits.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// settled reports whether the log shows "message done" for id and for every
// message accepted so far: every message the daemon took (on either host)
// has been processed to the end. Lines are written in order, so once id's
// "message done" is in, so is the acceptance of every message taken before
// id was.
func (d *daemon) settled(id string) bool {
	accepted, done := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(d.log.String(), "\n") {
		var rec struct {
			Msg   string `json:"msg"`
			MsgID string `json:"msg_id"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.MsgID == "" {
			continue
		}
		switch rec.Msg {
		case "message accepted":
			accepted[rec.MsgID] = true
		case "message done":
			done[rec.MsgID] = true
		}
	}
	if !done[id] {
		return false
	}
	for a := range accepted {
		if !done[a] {
			return false
		}
	}
	return true
}

// receivedID is the msg_id that the last hop's Received header gives msg.
func receivedID(t *testing.T, msg string) string {
	t.Helper()
	m := regexp.MustCompile(`\(gomta\) with \S+ id (\S+?);?\s`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no gomta Received header in:\n%s", msg)
	}
	return m[1]
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// python runs a Python 3 script with arguments and returns its stdout.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := needTool(t, "python3")
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	return out.String()
}
