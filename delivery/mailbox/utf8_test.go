package mailbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestUTF8MailboxPath checks where the mailbox of a UTF-8 account lives: one
// directory, named after the account in its folded form (NFC local part,
// A-label domain), whichever spelling the delivery and the login use.
func TestUTF8MailboxPath(t *testing.T) {
	t.Parallel()
	const configured = "用户@例子.中国"
	s := startStore(t, zaptest.NewLogger(t), configured, "Jos\u0065\u0301@B.test")
	src := spool(t, t.TempDir(), "m1", msgBody(1))
	for i, user := range []string{"用户@xn--fsqu00a.xn--fiqs8s", "用户@例子.中国", "用户@XN--FSQU00A.xn--fiqs8s"} {
		if err := s.Deliver(context.Background(), Delivery{User: user, MsgID: "m" + string(rune('a'+i)), BodyPath: src}); err != nil {
			t.Fatalf("Deliver to %q: %v", user, err)
		}
	}
	dir := filepath.Join(s.root, "用户@xn--fsqu00a.xn--fiqs8s")
	if got := names(t, filepath.Join(dir, dirNew)); len(got) != 3 {
		t.Errorf("%s/new = %v, want 3 messages", dir, got)
	}
	ss := mustOpen(t, s, configured)
	if n := len(ss.List()); n != 3 {
		t.Errorf("session sees %d messages, want 3", n)
	}
	ss.Close()
	if err := s.Deliver(context.Background(), Delivery{User: "jos\u00e9@b.test", MsgID: "md", BodyPath: src}); err != nil {
		t.Fatalf("Deliver to the NFC spelling: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "jos\u00e9@b.test", dirNew)); err != nil {
		t.Errorf("NFC directory: %v", err)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("root holds %d entries, want 2 mailboxes", len(entries))
	}
	for _, bad := range []string{"a/b@例子.中国", "..@例子.中国", ".x@b.test"} {
		if _, err := New(Options{Root: t.TempDir(), Users: []string{bad}, Logger: zaptest.NewLogger(t)}); err == nil {
			t.Errorf("New accepted user %q", bad)
		}
	}
}
