package main

import (
	"context"
	"encoding/json"
	"fmt"
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

	"gomta/mta/mtatest"
)

// cmdTimeout bounds every command the two-machine test runs (ip, swaks,
// python3): a hung client fails the test instead of reaching go test's
// timeout, which would skip the cleanup.
const cmdTimeout = 20 * time.Second

// nsPrefix names the test's namespaces: nsPrefix<pid>-a and -b, so that
// parallel runs never collide and a run's leftovers can be told apart.
const nsPrefix = "gomta-tm-"

// machines is two network namespaces joined by a veth pair, each the
// "machine" of one mtad. Everything it creates is removed by the cleanup
// that newMachines registers before it creates anything.
type machines struct {
	t    *testing.T
	ns   [2]string // namespace names
	ip   [2]string // veth addresses (TEST-NET-1, RFC 5737)
	ipc  string    // path of ip(8)
	mu   sync.Mutex
	proc []*nsDaemon // every daemon started, killed by the cleanup
}

// newMachines creates the namespaces, or skips the test saying why it
// cannot: it needs root and a kernel and ip(8) that do network namespaces.
func newMachines(t *testing.T) *machines {
	t.Helper()
	ipc, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("two-machine test: ip(8) not installed (iproute2)")
	}
	if os.Geteuid() != 0 {
		t.Skipf("two-machine test: needs root for ip netns (euid %d)", os.Geteuid())
	}
	pid := strconv.Itoa(os.Getpid())
	m := &machines{t: t, ipc: ipc, ns: [2]string{nsPrefix + pid + "-a", nsPrefix + pid + "-b"},
		ip: [2]string{"192.0.2.1", "192.0.2.2"}}
	removeStale(ipc)
	// Registered before anything exists, so that a failure at any step
	// (or a panic in the test) still kills the daemons and removes both
	// namespaces, and with them the veth pair.
	t.Cleanup(m.cleanup)
	if out, err := m.run("netns", "add", m.ns[0]); err != nil {
		t.Skipf("two-machine test: ip netns add failed (%v): %s", err, out)
	}
	m.must("netns", "add", m.ns[1])
	m.must("link", "add", "veth0", "netns", m.ns[0], "type", "veth", "peer", "name", "veth0", "netns", m.ns[1])
	for i, ns := range m.ns {
		m.must("-n", ns, "link", "set", "lo", "up")
		m.must("-n", ns, "addr", "add", m.ip[i]+"/24", "dev", "veth0")
		m.must("-n", ns, "link", "set", "veth0", "up")
	}
	return m
}

// run runs ip(8) with args, bounded by cmdTimeout.
func (m *machines) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.ipc, args...).CombinedOutput()
	return string(out), err
}

func (m *machines) must(args ...string) {
	m.t.Helper()
	if out, err := m.run(args...); err != nil {
		m.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// exec runs name with args in machine i's namespace, bounded by cmdTimeout,
// and returns its combined output.
func (m *machines) exec(i int, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.ipc, append([]string{"netns", "exec", m.ns[i], name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (m *machines) cleanup() {
	m.mu.Lock()
	procs := m.proc
	m.mu.Unlock()
	for _, d := range procs {
		d.kill()
	}
	for _, ns := range m.ns {
		m.run("netns", "del", ns) // absent when the test skipped or failed early
	}
}

// removeStale deletes the namespaces of earlier runs whose process is gone
// (a run killed before its cleanup could run).
func removeStale(ipc string) {
	out, err := exec.Command(ipc, "netns", "list").Output()
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + nsPrefix + `(\d+)-[ab]$`)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if s := re.FindStringSubmatch(f[0]); s != nil {
			if _, err := os.Stat(filepath.Join("/proc", s[1])); os.IsNotExist(err) {
				exec.Command(ipc, "netns", "del", f[0]).Run()
			}
		}
	}
}

// nsDaemon is one mtad running in a namespace through ip netns exec, which
// execs mtad in place: the process is mtad itself, so SIGKILL reaches it.
type nsDaemon struct {
	log  *mtatest.LogBuffer
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit; read only after done is closed
}

// start runs mtad with args in machine i and waits for "mtad started",
// which it logs once every listener is bound. Its log is shown if the test
// fails.
func (m *machines) start(i int, args ...string) *nsDaemon {
	m.t.Helper()
	d := &nsDaemon{log: &mtatest.LogBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(m.ipc, append([]string{"netns", "exec", m.ns[i], mtatest.Mtad(m.t)}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// The daemon dies with the test process even where no cleanup runs.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	m.mu.Lock()
	m.proc = append(m.proc, d)
	m.mu.Unlock()
	m.t.Cleanup(func() {
		if m.t.Failed() {
			m.t.Logf("mtad in %s %v log:\n%s", m.ns[i], args, d.log.String())
		}
	})
	exited := false
	mtatest.Eventually(m.t, fmt.Sprintf("mtad started in %s", m.ns[i]), func() bool {
		select {
		case <-d.done:
			exited = true
			return true
		default:
		}
		return strings.Contains(d.log.String(), `"mtad started"`)
	})
	if exited {
		m.t.Fatalf("mtad in %s exited early (%v):\n%s", m.ns[i], d.err, d.log.String())
	}
	return d
}

// kill sends SIGKILL and waits, at most cmdTimeout, for the exit.
func (d *nsDaemon) kill() {
	d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(cmdTimeout):
	}
}

// waitFind waits until find (from offset from) returns a line and returns it.
func (d *nsDaemon) waitFind(t *testing.T, from int, msg, key, val string) map[string]any {
	t.Helper()
	var rec map[string]any
	mtatest.Eventually(t, fmt.Sprintf("%q with %s %s in mtad's log", msg, key, val), func() bool {
		rec = d.find(from, msg, key, val)
		return rec != nil
	})
	return rec
}

// find returns the first JSON log line from byte offset from on whose msg is
// msg and whose field key is val, or nil.
func (d *nsDaemon) find(from int, msg, key, val string) map[string]any {
	for _, l := range strings.Split(d.log.String()[from:], "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg && rec[key] == val {
			return rec
		}
	}
	return nil
}
