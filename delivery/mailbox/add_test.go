package mailbox

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestAddWhileRunning: a user added to a running Store gets a mailbox that
// takes deliveries and opens; adding an existing user (in any case) changes
// nothing, and a bad name is refused with nothing added.
func TestAddWhileRunning(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	ctx := context.Background()
	const user2 = "new@mail.sustech.edu.cn"
	if err := s.Deliver(ctx, Delivery{User: user2, BodyPath: spool(t, t.TempDir(), "m0", "x\r\n")}); !errors.Is(err, ErrNoUser) {
		t.Fatalf("Deliver before Add: %v, want ErrNoUser", err)
	}
	if err := s.Add([]string{"USR1@mail.sustech.edu.cn", user2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, Delivery{User: user2, BodyPath: spool(t, t.TempDir(), "m1", msgBody(1))}); err != nil {
		t.Fatalf("Deliver after Add: %v", err)
	}
	ss := mustOpen(t, s, user2)
	if got, want := readAll(t, ss, 0), stored("", user2, msgBody(1)); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	ss.Close()
	if err := s.Add([]string{"ok@x.test", "../evil@x.test"}); err == nil {
		t.Error("Add with a bad name succeeded")
	}
	if _, err := s.Open(ctx, "ok@x.test"); !errors.Is(err, ErrNoUser) {
		t.Errorf("Open of a user from a refused batch: %v, want ErrNoUser", err)
	}
}
