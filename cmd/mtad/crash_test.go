package main

import (
	"fmt"
	"math/rand/v2"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// pyMessageIDs prints the Message-ID of every message in a mailbox, one a line.
const pyMessageIDs = `
import poplib, sys, email
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=60)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
for i in range(1, p.stat()[0] + 1):
    m = email.message_from_bytes(b"\r\n".join(p.top(i, 0)[1]))
    print(m.get("Message-ID", ""))
p.quit()
`

// stress reports whether the long tests (make stress) were asked for.
func stress() bool { return os.Getenv("GOMTA_STRESS") != "" }

// TestCrashLosesNothingAcked kills the daemon with SIGKILL while clients
// stream messages (local and relayed across), restarts it on the same data
// directory, and checks that every message that got a 250 arrives. make test
// runs 8 sessions and one kill; make stress 100 sessions and five kills.
func TestCrashLosesNothingAcked(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	sessions, kills := 8, 1
	if stress() {
		sessions, kills = 100, 5
	}
	cfg, p := writeConfig(t, "")
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"-config", cfg, "-data", data}
	acked := map[string]string{} // Message-ID → recipient
	var mu sync.Mutex
	rcpts := []string{"usr2@mail.sustech.edu.cn", "usr@gmail.com"}
	for round := range kills {
		d := mtatest.StartDaemon(t, args, p...)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range sessions {
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
					id := fmt.Sprintf("<crash-%d-%d-%d@test>", round, w, i)
					body := fmt.Sprintf("From: usr1@mail.sustech.edu.cn\r\nTo: %s\r\nMessage-ID: %s\r\nSubject: crash\r\n\r\nbody %d\r\n", rcpt, id, i)
					if err := smtp.SendMail(mtatest.Addr(p[0]), nil, "usr1@mail.sustech.edu.cn", []string{rcpt}, []byte(body)); err != nil {
						return // the daemon is gone: this one may or may not have been accepted
					}
					mu.Lock()
					acked[id] = rcpt
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		d.Kill()
		close(stop)
		wg.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no message was accepted before the kills; the test proves nothing")
	}
	t.Logf("%d messages got 250 across %d SIGKILLs with %d sessions", len(acked), kills, sessions)

	mtatest.StartDaemon(t, args, p...)
	want := map[string]int{} // recipient → messages acked for it
	for _, r := range acked {
		want[r]++
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", want["usr2@mail.sustech.edu.cn"])
	mtatest.WaitMailbox(t, mtatest.Addr(p[3]), "usr@gmail.com", "pass", want["usr@gmail.com"])
	got := map[string]map[string]int{}
	mtatest.Eventually(t, "every acked message delivered after restart", func() bool {
		for _, mb := range []struct{ rcpt, addr, pass string }{
			{"usr2@mail.sustech.edu.cn", mtatest.Addr(p[1]), "pass2"},
			{"usr@gmail.com", mtatest.Addr(p[3]), "pass"},
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
			dups += n - 1
		}
	}
	t.Logf("lost 0 of %d acked messages; %d duplicate deliveries (at-least-once)", len(acked), dups)
	if mtatest.Backend() != "local" {
		return // no spool: what a kill left staged under tmp/ is removed at start (mta/storage.go)
	}
	// A crash is no damage: drafts a kill interrupted are removed, and
	// nothing is ever set aside in corrupt/ (queue/recover.go).
	aside, err := filepath.Glob(filepath.Join(data, "*", "spool", "corrupt", "*"))
	if err != nil || len(aside) != 0 {
		t.Errorf("files set aside after SIGKILLs: %v %v", aside, err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(data, "*", "spool", "corrupt")); len(dirs) != 2 {
		t.Errorf("corrupt/ dirs %v: the test looks in the wrong place", dirs)
	}
}
