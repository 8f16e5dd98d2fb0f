package smtp

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/limit"
)

// netSMTPAuth runs AUTH PLAIN with Go's net/smtp and returns the reply code
// (235 for success). It does not call t, so that goroutines may use it.
func netSMTPAuth(addr, user, pass string) (int, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// PlainAuth sends the password in the clear to 127.0.0.1 only.
	err = c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1"))
	var te *textproto.Error
	switch {
	case err == nil:
		return 235, nil
	case errors.As(err, &te):
		return te.Code, nil
	}
	return 0, err
}

// TestAuthBudgetConcurrent (issue 9, item 5): after one failure, 30 AUTH
// attempts at once from one address check at most AuthFailures-1 more
// passwords; the others are locked out before their check. The password
// check holds every attempt that reaches it until each of the 30 has either
// reached it or been locked out, so that all of them are in flight together.
func TestAuthBudgetConcurrent(t *testing.T) {
	t.Parallel()
	const budget, burst = 5, 30
	var (
		burstOn, checked, lockedOut atomic.Int32
		gate                        = make(chan struct{})
		once                        sync.Once
	)
	allIn := func() {
		if checked.Load()+lockedOut.Load() >= burst {
			once.Do(func() { close(gate) })
		}
	}
	auth := func(ctx context.Context, user, pass string) bool {
		if burstOn.Load() == 1 {
			checked.Add(1)
			allIn()
			select { // bounded: the gate opens once every attempt is in
			case <-gate:
			case <-ctx.Done():
			case <-time.After(mtatest.Deadline):
			}
		}
		return testAuth(ctx, user, pass)
	}
	lim := limit.New(limit.Config{AuthFailures: budget})
	_, addr := startServer(t, Config{Auth: auth, AllowPlainAuth: allowAll, Limiter: lim}, &fakeBackend{})
	if code, err := netSMTPAuth(addr, "alice", "guess"); code != 535 {
		t.Fatalf("first failure: %d %v, want 535", code, err)
	}

	burstOn.Store(1)
	codes := make(chan int, burst)
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			code, err := netSMTPAuth(addr, "alice", "guess")
			if err != nil {
				t.Errorf("AUTH: %v", err)
				lockedOut.Add(1) // let the others through the gate
			}
			if code == 421 {
				lockedOut.Add(1)
			}
			allIn()
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if total := 1 + int(checked.Load()); total > budget {
		t.Errorf("%d passwords checked (1 + %d at once), want at most auth_failures = %d; replies %v", total, checked.Load(), budget, n)
	}
	if n[535] != int(checked.Load()) || n[535]+n[421] != burst {
		t.Errorf("replies %v: want one 535 per checked password (%d), 421 for the rest", n, checked.Load())
	}
	// The budget is spent: the right password is locked out too.
	if code, err := netSMTPAuth(addr, "alice", "secret"); code != 421 {
		t.Errorf("after the burst: %d %v, want 421", code, err)
	}
}
