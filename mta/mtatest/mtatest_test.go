package mtatest

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyWaitsForTheSignal(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(50 * time.Millisecond)
		n.Store(1)
	}()
	Eventually(t, "the flag", func() bool { return n.Load() == 1 })
}

// fakeTB records a Fatalf instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestEventuallyFailsAtTheDeadline(t *testing.T) {
	f := &fakeTB{TB: t}
	calls := 0
	EventuallyWithin(f, 60*time.Millisecond, "never", func() bool {
		calls++
		return f.failed // stop looping once Fatalf was called
	})
	if !f.failed {
		t.Fatal("Eventually did not fail when the condition never held")
	}
	if calls < 2 {
		t.Fatalf("condition polled %d times, want several", calls)
	}
}
