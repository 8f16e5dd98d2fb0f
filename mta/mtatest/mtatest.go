// Package mtatest is gomta's one internal test-helper package. It owns what
// the tests of several packages share:
//
//   - waiting for a positive signal with a deadline (Eventually) instead of
//     sleeping or asserting right after an asynchronous step;
//   - free loopback ports (FreePorts), chosen outside the kernel's ephemeral
//     range so that no client connection of a parallel test can take one
//     before the daemon binds it;
//   - the mtad daemon: built once per test binary (Mtad, WithMtad), started
//     from a config with its own data directory (StartDaemon), waited for
//     until every listener accepts, stopped with SIGTERM (SIGKILL as the hang
//     guard) or killed;
//   - a synchronised log buffer (LogBuffer) that a process writes while a
//     test reads;
//   - the TLS test certificate (TLS, Cert);
//   - POP3 mailbox counting with gomta's POP3 client (MailboxCount,
//     WaitMailbox).
//
// Invariant: of gomta's packages it imports only leaves that import nothing
// of gomta's themselves (session/selfsigned, session/pop3client) and whose
// in-package tests do not import mtatest (their external _test packages may),
// so that any package's tests may use it without an import cycle.
// Helpers that need a server package (starting a pop3.Server, say) live in
// that package's test double (session/pop3/pop3test).
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
