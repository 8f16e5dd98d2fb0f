package mailbox

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// startStoreWith is startStore with set applied to the Store before Run.
func startStoreWith(t *testing.T, set func(*Store), users ...string) *Store {
	t.Helper()
	s, err := New(Options{Root: filepath.Join(t.TempDir(), "mail"), Users: users, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	set(s)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})
	return s
}

// tracedSpool writes a committed spool file (0440, as the queue leaves it)
// that starts with user's trace fields, and the Delivery for it.
func tracedSpool(t *testing.T, from, user, body string) Delivery {
	t.Helper()
	fields, acct := TraceFields(from, user)
	p := filepath.Join(t.TempDir(), "06h4kbhtip474fceha2g")
	if err := os.WriteFile(p, append(fields, body...), 0o440); err != nil {
		t.Fatal(err)
	}
	return Delivery{User: user, Rcpt: user, From: from, MsgID: "06h4kbhtip474fceha2g", BodyPath: p,
		Size: int64(len(fields) + len(body)), TraceLen: int64(len(fields)), TraceTo: acct}
}

// delivered checks that user's new/ holds one file, the trace fields once
// and then body, and returns its path.
func delivered(t *testing.T, s *Store, from, user, body string) string {
	t.Helper()
	newDir := filepath.Join(s.root, user, dirNew)
	got := names(t, newDir)
	if len(got) != 1 {
		t.Fatalf("new/ = %v, want one file", got)
	}
	p := filepath.Join(newDir, got[0])
	want := stored(from, user, body)
	if data, _ := os.ReadFile(p); string(data) != want {
		t.Errorf("stored %q, want %q", data, want)
	}
	if size, ok := sizeField(got[0]); !ok || size != int64(len(want)) {
		t.Errorf("name %q: S=%d, want %d", got[0], size, len(want))
	}
	if tmp := names(t, filepath.Join(s.root, user, dirTmp)); len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
	return p
}

// TestDeliverLinksTracedSpool: a spool file that starts with the mailbox's
// trace fields is hard-linked into new/: the same inode, the fields once.
func TestDeliverLinksTracedSpool(t *testing.T) {
	t.Parallel()
	s := startStore(t, zap.NewNop(), user1)
	d := tracedSpool(t, "a@x.example", user1, msgBody(2))
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	p := delivered(t, s, "a@x.example", user1, msgBody(2))
	a, _ := os.Stat(d.BodyPath)
	b, _ := os.Stat(p)
	if !os.SameFile(a, b) {
		t.Errorf("delivered file is not a link of the spool file")
	}
	if !s.LinksTrace() {
		t.Errorf("LinksTrace false after a link")
	}
}

// TestDeliverTracedLinkFails: where the link fails, the spool file is
// copied as it is (the trace fields not written twice); EXDEV stops the
// Store trying, EMLINK does not.
func TestDeliverTracedLinkFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		err   error
		calls int32 // failLink calls for two deliveries
	}{
		{"EXDEV", syscall.EXDEV, 1},
		{"EMLINK", syscall.EMLINK, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			s := startStoreWith(t, func(s *Store) {
				s.failLink = func() error { calls.Add(1); return c.err }
			}, user1)
			d := tracedSpool(t, "a@x.example", user1, msgBody(3))
			if err := s.Deliver(context.Background(), d); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			p := delivered(t, s, "a@x.example", user1, msgBody(3))
			a, _ := os.Stat(d.BodyPath)
			b, _ := os.Stat(p)
			if os.SameFile(a, b) || b.Mode().Perm() != 0o600 {
				t.Errorf("fallback: same file %v, mode %v; want a copy, 0600", os.SameFile(a, b), b.Mode().Perm())
			}
			if err := s.Deliver(context.Background(), d); err != nil {
				t.Fatalf("second Deliver: %v", err)
			}
			if n := calls.Load(); n != c.calls {
				t.Errorf("%d links tried, want %d", n, c.calls)
			}
			if s.LinksTrace() != (c.err != syscall.EXDEV) {
				t.Errorf("LinksTrace = %v after %v", s.LinksTrace(), c.err)
			}
		})
	}
}

// TestDeliverTracedForAnother: a spool file whose trace fields name another
// account (two recipients, or an account renamed meanwhile) is copied
// without them, after this mailbox's own.
func TestDeliverTracedForAnother(t *testing.T) {
	t.Parallel()
	const user2 = "usr2@mail.sustech.edu.cn"
	s := startStore(t, zap.NewNop(), user1, user2)
	d := tracedSpool(t, "a@x.example", user2, msgBody(1))
	d.User, d.Rcpt = user1, user1
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	delivered(t, s, "a@x.example", user1, msgBody(1))
}
