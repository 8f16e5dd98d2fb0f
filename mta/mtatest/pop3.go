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
