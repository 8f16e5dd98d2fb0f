package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// TestGracefulStopUnderLoad sends SIGTERM while clients stream messages over
// raw SMTP: every client either finishes what it started or reads a 421
// before its connection ends (never a reset or EOF without one), the daemon
// exits 0, and after a restart every message that got a 250 is delivered.
func TestGracefulStopUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	sessions := 10
	if stress() {
		sessions = 100
	}
	cfg, p := writeConfig(t, "")
	args := []string{"-config", cfg, "-data", filepath.Join(t.TempDir(), "data")}
	d := mtatest.StartDaemon(t, args, p...)
	addr := mtatest.Addr(p[0])

	var (
		mu      sync.Mutex
		acked   []string
		got421  atomic.Int64
		started sync.WaitGroup
		wg      sync.WaitGroup
	)
	started.Add(sessions)
	for w := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				started.Done()
				t.Errorf("session %d: dial: %v", w, err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			c := textproto.NewConn(conn)
			first := true
			step := func(cmd string, want int) bool {
				if cmd != "" {
					if err := c.PrintfLine("%s", cmd); err != nil {
						t.Errorf("session %d: write %q: %v (no 421 seen)", w, cmd, err)
						return false
					}
				}
				code, msg, err := c.ReadResponse(want)
				if code == 421 {
					got421.Add(1)
					return false
				}
				if err != nil {
					if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") {
						t.Errorf("session %d: connection ended without 421 after %q: %v", w, cmd, err)
					} else {
						t.Errorf("session %d: %q: %d %s (%v)", w, cmd, code, msg, err)
					}
					return false
				}
				return true
			}
			if !step("", 220) || !step("EHLO load.test", 250) {
				started.Done()
				return
			}
			for i := range 5000 { // bounded; SIGTERM comes first
				if first {
					started.Done()
					first = false
				}
				id := fmt.Sprintf("<graceful-%d-%d@test>", w, i)
				if !step("MAIL FROM:<usr1@mail.sustech.edu.cn>", 250) || !step("RCPT TO:<usr2@mail.sustech.edu.cn>", 250) ||
					!step("DATA", 354) {
					return
				}
				if !step(fmt.Sprintf("Message-ID: %s\r\nSubject: g\r\n\r\nbody\r\n.", id), 250) {
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	started.Wait()
	time.Sleep(300 * time.Millisecond)
	d.Stop(t) // SIGTERM; fails the test on a non-zero exit
	wg.Wait()
	if got421.Load() == 0 {
		t.Error("no session saw the 421 of the shutdown")
	}
	t.Logf("%d sessions, %d saw 421, %d messages acked before SIGTERM", sessions, got421.Load(), len(acked))

	mtatest.StartDaemon(t, args, p...)
	mtatest.WaitMailbox(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", len(acked))
	mtatest.Eventually(t, "every acked message delivered", func() bool {
		out := python(t, pyMessageIDs, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2")
		have := map[string]bool{}
		for _, l := range strings.Fields(out) {
			have[l] = true
		}
		for _, id := range acked {
			if !have[id] {
				return false
			}
		}
		return true
	})
}
