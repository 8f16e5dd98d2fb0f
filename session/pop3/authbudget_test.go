package pop3_test

import (
	"context"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/limit"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
)

// gatedBackend counts the passwords it checks and, from the second on,
// holds each check until ready reports that every attempt of the burst has
// either reached a check or been refused.
type gatedBackend struct {
	*pop3test.Backend
	checked atomic.Int32
	ready   func() bool
}

func (b *gatedBackend) Login(ctx context.Context, user, pass string) error {
	if b.checked.Add(1) > 1 {
		for i := 0; i < 3000 && !b.ready() && ctx.Err() == nil; i++ { // bounded: 30 s
			time.Sleep(10 * time.Millisecond)
		}
	}
	return b.Backend.Login(ctx, user, pass)
}

// pyBurst fails one login with poplib, then makes 30 login attempts at once
// with wrong passwords, USER/PASS and AUTH PLAIN in turn, and prints each
// reply.
const pyBurst = `
import base64, poplib, sys, threading
port = int(sys.argv[1])
def attempt(i):
    p = poplib.POP3('127.0.0.1', port, timeout=60)
    try:
        if i % 2 == 0:
            p.user('alice')
            return p.pass_('guess%d' % i).decode()
        return p._shortcmd('AUTH PLAIN ' + base64.b64encode(b'\0alice\0guess%d' % i).decode()).decode()
    except poplib.error_proto as e:
        return e.args[0].decode()
    finally:
        p.close()
print(attempt(0))
out = [None] * 30
def run(i):
    out[i] = attempt(i)
ts = [threading.Thread(target=run, args=(i,)) for i in range(30)]
for t in ts: t.start()
for t in ts: t.join()
for r in out: print(r)
`

// TestAuthBudgetConcurrent (issue 9, item 5): after one failure, 30 logins
// at once from one address (USER/PASS and AUTH PLAIN) check at most
// AuthFailures-1 more passwords; the others are refused before their check.
func TestAuthBudgetConcurrent(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	const budget, burst = 5, 30
	const refusal = "login refused, too many failures"
	core, logs := observer.New(zap.InfoLevel)
	be := &gatedBackend{Backend: newBackend()}
	be.ready = func() bool {
		return int(be.checked.Load())-1+logs.FilterMessage(refusal).Len() >= burst
	}
	lim := limit.New(limit.Config{AuthFailures: budget})
	ts := start(t, be, pop3.Config{Limiter: lim, Logger: zap.New(core)})
	_, port, _ := strings.Cut(ts.addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pyBurst, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	const (
		authFailed = "-ERR [AUTH] invalid user name or password"
		locked     = "-ERR [AUTH] too many failed logins, try later"
	)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 1+burst || lines[0] != authFailed {
		t.Fatalf("poplib output:\n%s", out)
	}
	n := map[string]int{}
	for _, l := range lines[1:] {
		n[l]++
	}
	checked := int(be.checked.Load())
	if checked > budget {
		t.Errorf("%d passwords checked (1 + %d at once), want at most auth_failures = %d; replies %v", checked, checked-1, budget, n)
	}
	if n[authFailed] != checked-1 || n[authFailed]+n[locked] != burst {
		t.Errorf("replies %v: want one failure per checked password (%d), a lock-out for the rest", n, checked-1)
	}
}
