package main

import (
	"fmt"
	"math/rand/v2"
	"net/smtp"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pyMessageIDs prints the Message-ID of every message in a mailbox, one a line.
const pyMessageIDs = `
import poplib, sys, email
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=30)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
for i in range(1, p.stat()[0] + 1):
    m = email.message_from_bytes(b"\r\n".join(p.retr(i)[1]))
    print(m.get("Message-ID", ""))
p.quit()
`

// TestCrashLosesNothingAcked kills the daemon with SIGKILL while several
// clients stream messages (local and relayed across), restarts it on the same
// data directory, and checks that every message that got a 250 arrives.
func TestCrashLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	cfg, p := writeConfig(t, "")
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"-config", cfg, "-data", data}
	d := startDaemon(t, args, p...)

	var (
		mu    sync.Mutex
		acked = map[string]string{} // Message-ID → recipient
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	rcpts := []string{"usr2@mail.sustech.edu.cn", "usr@gmail.com"}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 { // bounded; the kill comes first
				select {
				case <-stop:
					return
				default:
				}
				rcpt := rcpts[(w+i)%2]
				id := fmt.Sprintf("<crash-%d-%d@test>", w, i)
				body := fmt.Sprintf("From: usr1@mail.sustech.edu.cn\r\nTo: %s\r\nMessage-ID: %s\r\nSubject: crash\r\n\r\nbody %d\r\n", rcpt, id, i)
				if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", p[0]), nil, "usr1@mail.sustech.edu.cn", []string{rcpt}, []byte(body)); err != nil {
					return // the daemon is gone: this one may or may not have been accepted
				}
				mu.Lock()
				acked[id] = rcpt
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
	d.kill()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no message was accepted before the kill; the test proves nothing")
	}
	t.Logf("%d messages got 250 before SIGKILL", len(acked))

	startDaemon(t, args, p...)
	want := map[string]int{}
	for _, r := range acked {
		want[r]++
	}
	got := map[string]map[string]int{}
	eventually(t, "every acked message delivered after restart", func() bool {
		for _, mb := range []struct{ rcpt, addr, pass string }{
			{"usr2@mail.sustech.edu.cn", fmt.Sprintf("127.0.0.1:%d", p[1]), "pass2"},
			{"usr@gmail.com", fmt.Sprintf("127.0.0.1:%d", p[3]), "pass"},
		} {
			ids := map[string]int{}
			for _, l := range strings.Fields(python(t, pyMessageIDs, mb.addr, mb.rcpt, mb.pass)) {
				ids[l]++
			}
			got[mb.rcpt] = ids
		}
		for id, r := range acked {
			if got[r][id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, ids := range got {
		for _, n := range ids {
			if n > 1 {
				dups += n - 1
			}
		}
	}
	t.Logf("all %d acked messages delivered; %d duplicates (at-least-once)", len(acked), dups)
}
