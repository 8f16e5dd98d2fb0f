package mailbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
)

// With the size the queue recorded, the copy is the whole body and the
// name's S= field counts it, as with the size found by fstat.
func TestDeliverWithKnownSize(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	body := msgBody(2000) // larger than one copy_file_range would need
	src := spool(t, t.TempDir(), "m", body)
	d := Delivery{User: user1, From: "a@x.example", BodyPath: src, Size: int64(len(body))}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	newDir := filepath.Join(s.root, user1, dirNew)
	got := names(t, newDir)
	if len(got) != 1 {
		t.Fatalf("new/ = %v, want one file", got)
	}
	b, err := os.ReadFile(filepath.Join(newDir, got[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := stored("a@x.example", user1, body)
	if string(b) != want {
		t.Fatalf("stored %d octets, want %d", len(b), len(want))
	}
	if n, ok := sizeField(got[0]); !ok || n != int64(len(want)) {
		t.Errorf("S= field %d, %v; want %d", n, ok, len(want))
	}
}

// A spool file shorter than its recorded size is never published as a
// truncated message: the delivery fails (temporarily) and tmp/ stays clean.
func TestDeliverShortBodyFails(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	src := spool(t, t.TempDir(), "m", "x\r\n")
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src, Size: 100}); err == nil {
		t.Fatal("Deliver of a short body succeeded")
	}
	for _, sub := range []string{dirNew, dirTmp} {
		if got := names(t, filepath.Join(s.root, user1, sub)); len(got) != 0 {
			t.Errorf("%s/ = %v", sub, got)
		}
	}
}

// The actor keeps new/ open between deliveries; a new/ removed and created
// again meanwhile (by an operator or another tool) gets the next message:
// the rename into the removed directory the descriptor names fails, and is
// retried on the new one.
func TestDeliverIntoReplacedNewDir(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	src := spool(t, t.TempDir(), "m", msgBody(1))
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	newDir := filepath.Join(s.root, user1, dirNew)
	old := filepath.Join(s.root, user1, "new.old")
	if err := os.Rename(newDir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}); err != nil {
		t.Fatalf("Deliver after new/ was replaced: %v", err)
	}
	if got := names(t, newDir); len(got) != 1 {
		t.Fatalf("new/ = %v, want the second message", got)
	}
}

// TestDeliverIntoMovedNewDir: new/ moved aside (not removed) and made
// again while the actor holds the old one open gets the next message in the
// new new/, where POP3 reads, not in the directory moved aside.
func TestDeliverIntoMovedNewDir(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	src := spool(t, t.TempDir(), "m", msgBody(1))
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	newDir := filepath.Join(s.root, user1, dirNew)
	old := filepath.Join(s.root, user1, "new.old")
	if err := os.Rename(newDir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}); err != nil {
		t.Fatalf("Deliver after new/ was moved aside: %v", err)
	}
	if got, aside := names(t, newDir), names(t, old); len(got) != 1 || len(aside) != 1 {
		t.Fatalf("new/ = %v, new.old/ = %v: want one message in each", got, aside)
	}
}
