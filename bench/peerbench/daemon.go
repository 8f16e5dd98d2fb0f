package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// gomtad is the mtad process the runner owns (with -mtad): started before
// the first workload and started afresh before every W6 and W7 round, so that
// their memory figures are the idle daemon's and not what W1–W5 left in its
// heap. Its pid is written to -mtad-pidfile each time, for peers.sh's trap.
// Without -mtad the runner measures the daemon of -gomta-pid and cannot
// restart it.
type gomtad struct {
	bin, config, logPath, pidFile string
	addrs                         []string   // ports that must accept before it counts as up
	mu                            sync.Mutex // cmd, exited: the signal handler stops mtad too
	cmd                           *exec.Cmd
	exited                        chan struct{}
	extPID                        int // -gomta-pid, when the runner does not own mtad
}

// owned reports whether the runner starts and stops mtad itself.
func (d *gomtad) owned() bool { return d.bin != "" }

// pid is the running mtad's process id.
func (d *gomtad) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil && d.cmd.Process != nil {
		return d.cmd.Process.Pid
	}
	return d.extPID
}

// start runs mtad and waits (bounded: 60 s) until its ports accept.
func (d *gomtad) start() error {
	lf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close() // the child has its own copy
	cmd := exec.Command(d.bin, "-config", d.config, "-log-level", "warn")
	cmd.Stdout, cmd.Stderr = lf, lf
	// If the runner dies without stopping it, the kernel sends mtad SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mtad: %w", err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				logf("mtad waiter panic: %v", r)
			}
		}()
		_ = cmd.Wait()
		close(exited)
	}()
	if d.pidFile != "" {
		_ = os.WriteFile(d.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	}
	for _, a := range d.addrs {
		if err := waitPort(a, 60*time.Second, exited); err != nil {
			_ = d.stop()
			return fmt.Errorf("mtad (pid %d): %w", cmd.Process.Pid, err)
		}
	}
	return nil
}

// stop sends SIGTERM (graceful shutdown) and waits up to 30 s, then SIGKILL.
func (d *gomtad) stop() error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if d.pidFile != "" {
		_ = os.Remove(d.pidFile)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	return errors.New("mtad did not stop within 30 s of SIGTERM: killed")
}

// freshGomta restarts mtad (when the runner owns it) and lets it settle.
func (b *bench) freshGomta() bool {
	if !b.g.owned() {
		return false
	}
	if err := b.g.stop(); err != nil {
		logf("%v", err)
	}
	if err := b.g.start(); err != nil {
		logf("restart gomta: %v", err)
		return false
	}
	time.Sleep(time.Second)
	return true
}

// freshPeer restarts Postfix with -peer-restart (a shell command) and waits
// for its SMTP port.
func (b *bench) freshPeer() bool {
	if b.o.peerRestart == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "bash", "-c", b.o.peerRestart).CombinedOutput(); err != nil {
		logf("restart peer: %v: %s", err, out)
		return false
	}
	if err := waitPort(b.o.pSMTP, 30*time.Second, nil); err != nil {
		logf("restart peer: %v", err)
		return false
	}
	time.Sleep(time.Second)
	return true
}

// waitPort waits until addr accepts a TCP connection; gone (if not nil)
// closing first means the server died.
func waitPort(addr string, limit time.Duration, gone <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept within %s: %w", addr, limit, err)
		}
		select {
		case <-gone:
			return fmt.Errorf("exited before %s accepted", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
