package mtatest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before it kills the daemon
// and fails the test: a hang guard, longer than mtad's own shutdown grace.
const StopGrace = 20 * time.Second

// mtadDir holds the daemon binary; WithMtad removes it after the tests.
var (
	mtadDirOnce sync.Once
	mtadDir     string
	mtadDirErr  error
)

func binDir() (string, error) {
	mtadDirOnce.Do(func() { mtadDir, mtadDirErr = os.MkdirTemp("", "mtatest-mtad") })
	return mtadDir, mtadDirErr
}

// build builds gomta/cmd/mtad once per test binary, with the race detector
// when the tests run with it.
var build = sync.OnceValues(func() (string, error) {
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mtad")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "gomta/cmd/mtad")...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mtad: %v\n%s", err, out)
	}
	return bin, nil
})

// Mtad returns the path of the mtad binary, building it at the first call;
// a daemon that does not build fails the test (the end-to-end tests are the
// proof against the real daemon: they never skip for it).
func Mtad(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestingM is what TestMain gets (and what goleak.VerifyTestMain takes).
type TestingM interface{ Run() int }

type withMtad struct{ m TestingM }

// WithMtad wraps a TestMain's m so that the mtad binary Mtad builds is
// removed once the tests have run: os.Exit(mtatest.WithMtad(m).Run()).
func WithMtad(m TestingM) TestingM { return withMtad{m} }

func (w withMtad) Run() int {
	code := w.m.Run()
	if dir, err := binDir(); err == nil {
		os.RemoveAll(dir)
	}
	return code
}

// Daemon is one running mtad process.
type Daemon struct {
	Log  *LogBuffer // the daemon's stdout and stderr
	Args []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit; read only after done is closed
}

// StartDaemon runs mtad with args (a config and a data directory of the
// test's own) and waits until every port in ports accepts connections. The
// daemon is stopped at the end of the test (Stop), and its log shown if the
// test failed.
func StartDaemon(t testing.TB, args []string, ports ...int) *Daemon {
	t.Helper()
	d := &Daemon{Log: &LogBuffer{}, Args: args, cmd: exec.Command(Mtad(t), args...), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.Log, d.Log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.Stop(t)
		if t.Failed() {
			t.Logf("mtad %v log:\n%s", args, d.Log.String())
		}
	})
	d.WaitListening(t, ports...)
	return d
}

// WaitListening waits until every port accepts a connection, failing the
// test at once if the daemon exits first.
func (d *Daemon) WaitListening(t testing.TB, ports ...int) {
	t.Helper()
	for _, p := range ports {
		exited := false
		Eventually(t, fmt.Sprintf("mtad listening on %d", p), func() bool {
			select {
			case <-d.done:
				exited = true
				return true
			default:
			}
			c, err := net.DialTimeout("tcp", Addr(p), time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		if exited {
			t.Fatalf("mtad exited early (%v):\n%s", d.err, d.Log.String())
		}
	}
}

// Done is closed when the process has exited; Err is then its exit error.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is the exit error (nil for exit status 0); valid once Done is closed.
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits for the exit, failing the test on a non-zero
// exit; a daemon still running StopGrace later is killed and fails it too.
// Stopping a daemon that has exited does nothing.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
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
	case <-time.After(StopGrace):
		d.Kill()
		t.Errorf("mtad did not stop within %v of SIGTERM", StopGrace)
	}
}

// Kill sends SIGKILL and waits for the exit.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// WaitLog waits (Eventually) until the daemon's output contains s: zap
// writes log lines in batches, a little late.
func (d *Daemon) WaitLog(t testing.TB, s string) {
	t.Helper()
	Eventually(t, fmt.Sprintf("%q in mtad's log", s), func() bool { return strings.Contains(d.Log.String(), s) })
}

// Settled reports whether the daemon's log shows "message done" for id and
// for every message accepted so far: every message the daemon took (on any
// of its hosts) has been processed to the end. Lines are written in order,
// so once id's "message done" is in, so is the acceptance of every message
// taken before id was.
func (d *Daemon) Settled(id string) bool {
	accepted, done := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(d.Log.String(), "\n") {
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
