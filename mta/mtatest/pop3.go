package mtatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gomta/session/pop3client"
)

// MailboxCount logs in to the POP3 server at addr as user with gomta's POP3
// client (USER/PASS, in plaintext: the tests' servers are on loopback) and
// returns the number of messages in the maildrop. It quits without deleting.
func MailboxCount(addr, user, pass string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, addr, pop3client.Options{Timeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Login(user, pass); err != nil {
		return 0, err
	}
	n, _, err := c.Stat()
	if err != nil {
		return 0, err
	}
	return n, c.Quit()
}

// WaitMailbox waits (Eventually) until user's maildrop at addr holds at
// least n messages: delivery is asynchronous.
func WaitMailbox(t testing.TB, addr, user, pass string, n int) {
	t.Helper()
	var last error
	var got int
	defer func() {
		if t.Failed() {
			t.Logf("last count for %s: %d (%v)", user, got, last)
		}
	}()
	Eventually(t, fmt.Sprintf("%d message(s) for %s", n, user), func() bool {
		got, last = MailboxCount(addr, user, pass)
		return last == nil && got >= n
	})
}

// RetrDele reads message 1 of user's maildrop at addr (RETR), deletes it
// (DELE) and quits, so that the deletion is committed (RFC 1939 UPDATE).
func RetrDele(t testing.TB, addr, user, pass string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, addr, pop3client.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retr(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}
