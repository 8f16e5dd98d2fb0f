// Package mtatest owns the helpers that gomta's tests share across packages:
// waiting for a positive signal with a deadline (Eventually) instead of
// sleeping or asserting right after an asynchronous step. It imports nothing
// of gomta's, so any package's tests may use it.
package mtatest

import (
	"testing"
	"time"
)

// Deadline is how long Eventually waits by default. It is long because the
// race detector and a loaded CI machine slow everything down; nothing in a
// test measures speed.
const Deadline = 30 * time.Second

// poll is how often Eventually looks again.
const poll = 20 * time.Millisecond

// Eventually calls cond until it reports true, failing the test with
// "timed out waiting for <what>" after Deadline. cond runs in the test's
// goroutine; it must not call t.Fatal.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Deadline, what, cond)
}

// EventuallyWithin is Eventually with a given deadline.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(poll)
	}
}
