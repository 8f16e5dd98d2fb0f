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

// The actor keeps new/ open between deliveries. A new/ replaced meanwhile
// (by an operator or another tool) gets the next message, where POP3
// reads: removed and made again, the rename into the removed directory
// fails and is retried on the new one; moved aside and made again, the
// held directory is found not to be the one at the path (device, inode).
func TestDeliverIntoReplacedNewDir(t *testing.T) {
	t.Parallel()
	for _, removed := range []bool{true, false} {
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
		if removed {
			if err := os.RemoveAll(old); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(newDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}); err != nil {
			t.Fatalf("removed %v: Deliver after new/ was replaced: %v", removed, err)
		}
		if got := names(t, newDir); len(got) != 1 {
			t.Fatalf("removed %v: new/ = %v, want the second message", removed, got)
		}
		if !removed {
			if aside := names(t, old); len(aside) != 1 {
				t.Fatalf("new.old/ = %v, want only the first message", aside)
			}
		}
	}
}
