package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

const user1 = "usr1@mail.sustech.edu.cn"

// startStore builds a Store under t.TempDir and runs it until the test ends.
func startStore(t testing.TB, log *zap.Logger, users ...string) *Store {
	t.Helper()
	s, err := New(Options{Root: filepath.Join(t.TempDir(), "mail"), Users: users, Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// spool writes a read-only committed spool file like the queue leaves.
func spool(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o400); err != nil {
		t.Fatal(err)
	}
	return p
}

func msgBody(n int) string {
	return fmt.Sprintf("Subject: test %d\r\n\r\n%s\r\n", n, strings.Repeat("x", n*10))
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func readAll(t *testing.T, ss *Session, i int) string {
	t.Helper()
	rc, err := ss.Open(context.Background(), i)
	if err != nil {
		t.Fatalf("Session.Open(%d): %v", i, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustOpen(t *testing.T, s *Store, user string) *Session {
	t.Helper()
	ss, err := s.Open(context.Background(), user)
	if err != nil {
		t.Fatalf("Open(%s): %v", user, err)
	}
	return ss
}

// stored is what a mailbox holds for body delivered to user from from.
func stored(from, user, body string) string {
	return "Return-Path: <" + from + ">\r\nDelivered-To: " + user + "\r\n" + body
}

func TestDeliverWritesTraceHeadersAndCopy(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	s := startStore(t, zap.New(core), user1)
	// The message's own Return-Path stays, after ours (as Postfix does).
	body := "Return-Path: <old@example.org>\r\n" + msgBody(3)
	src := spool(t, t.TempDir(), "m1", body)
	d := Delivery{User: "USR1@Mail.SUSTech.edu.cn", Rcpt: "USR1@Mail.SUSTech.edu.cn", From: "a@x.example", BodyPath: src}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	want := stored("a@x.example", user1, body)
	newDir := filepath.Join(s.root, user1, dirNew)
	got := names(t, newDir)
	if len(got) != 1 {
		t.Fatalf("new/ = %v, want one file", got)
	}
	if suffix := fmt.Sprintf(",S=%d", len(want)); !strings.HasSuffix(got[0], suffix) {
		t.Errorf("name %q lacks %q", got[0], suffix)
	}
	if tmp := names(t, filepath.Join(s.root, user1, dirTmp)); len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
	p := filepath.Join(newDir, got[0])
	a, _ := os.Stat(src)
	b, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(a, b) {
		t.Errorf("delivered file is a link to the spool file")
	}
	if b.Mode().Perm() != 0o600 {
		t.Errorf("delivered file mode %v, want 0600", b.Mode().Perm())
	}
	if data, _ := os.ReadFile(p); string(data) != want {
		t.Errorf("stored %q, want %q", data, want)
	}
	if data, _ := os.ReadFile(src); string(data) != body {
		t.Errorf("spool file changed: %q", data)
	}
	entries := logs.FilterMessage("message delivered").All()
	if len(entries) != 1 {
		t.Fatalf("%d 'message delivered' logs, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if f["user"] != user1 || f["bytes"] != int64(len(want)) || f["file"] != got[0] {
		t.Errorf("log fields = %v", f)
	}
	if _, ok := f["duration_ms"]; !ok {
		t.Errorf("log lacks duration_ms: %v", f)
	}
}

// TestDeliverTraceHeaders: the null sender is "<>", and no address can add
// a header line of its own.
func TestDeliverTraceHeaders(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ from, rcpt, want string }{
		{"", "u@h", "Return-Path: <>\r\nDelivered-To: u@h\r\n"},
		{"a@x", "u@h", "Return-Path: <a@x>\r\nDelivered-To: u@h\r\n"},
		{"a@x>\r\nX-Evil: 1", "u@h\n", "Return-Path: <a@x>X-Evil: 1>\r\nDelivered-To: u@h\r\n"},
		{"\u5f20\u4e09@x", "u@h", "Return-Path: <\u5f20\u4e09@x>\r\nDelivered-To: u@h\r\n"},
	} {
		if got := string(traceHeaders(c.from, c.rcpt)); got != c.want {
			t.Errorf("traceHeaders(%q, %q) = %q, want %q", c.from, c.rcpt, got, c.want)
		}
	}
}

func TestDeliverMissingBody(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("Deliver of a missing file succeeded")
	}
	if got := names(t, filepath.Join(s.root, user1, dirNew)); len(got) != 0 {
		t.Errorf("new/ = %v", got)
	}
}

func TestOpenSizesAndStableUIDs(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	dir := t.TempDir()
	var bodies []string
	for i := range 3 {
		bodies = append(bodies, msgBody(i+1))
		if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, dir, fmt.Sprint(i), bodies[i])}); err != nil {
			t.Fatal(err)
		}
	}
	ss := mustOpen(t, s, user1)
	first := ss.List()
	if len(first) != 3 {
		t.Fatalf("List = %v, want 3", first)
	}
	seen := map[string]bool{}
	for i, in := range first {
		if in.Size != int64(len(stored("", user1, bodies[i]))) {
			t.Errorf("msg %d size %d, want %d (oldest first)", i, in.Size, len(stored("", user1, bodies[i])))
		}
		if got := readAll(t, ss, i); got != stored("", user1, bodies[i]) {
			t.Errorf("msg %d content %q, want %q", i, got, stored("", user1, bodies[i]))
		}
		if in.UID == "" || len(in.UID) > maxUIDLen || strings.ContainsAny(in.UID, " :/") || seen[in.UID] {
			t.Errorf("msg %d bad UID %q", i, in.UID)
		}
		seen[in.UID] = true
	}
	ss.Close()
	// Open moved the messages into cur/ with ":2,".
	if n := names(t, filepath.Join(s.root, user1, dirNew)); len(n) != 0 {
		t.Errorf("new/ after Open = %v", n)
	}
	for _, n := range names(t, filepath.Join(s.root, user1, dirCur)) {
		if !strings.HasSuffix(n, infoNew) {
			t.Errorf("cur/ name %q lacks %q", n, infoNew)
		}
	}
	ss = mustOpen(t, s, user1)
	defer ss.Close()
	second := ss.List()
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("listing changed across sessions:\n%v\n%v", first, second)
	}
	if _, err := ss.Open(context.Background(), 3); err == nil {
		t.Errorf("Session.Open(3) of 3 messages succeeded")
	}
}

func TestUIDSurvivesFlagChange(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", msgBody(1))}); err != nil {
		t.Fatal(err)
	}
	ss := mustOpen(t, s, user1)
	uid := ss.List()[0].UID
	// Another Maildir tool marks the message seen while we hold it.
	cur := filepath.Join(s.root, user1, dirCur)
	n := names(t, cur)[0]
	if err := os.Rename(filepath.Join(cur, n), filepath.Join(cur, n+"S")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, ss, 0); got != stored("", user1, msgBody(1)) {
		t.Errorf("content after flag change = %q", got)
	}
	ss.Close()
	ss = mustOpen(t, s, user1)
	if got := ss.List()[0].UID; got != uid {
		t.Errorf("UID %q after flag change, want %q", got, uid)
	}
	if err := ss.Commit(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	if n := names(t, cur); len(n) != 0 {
		t.Errorf("cur/ after delete = %v", n)
	}
}

func TestInUse(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1, "usr2@mail.sustech.edu.cn")
	ctx := context.Background()
	ss := mustOpen(t, s, user1)
	if _, err := s.Open(ctx, user1); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	// Another user's mailbox is independent.
	other := mustOpen(t, s, "USR2@mail.sustech.edu.cn")
	other.Close()
	ss.Close()
	ss = mustOpen(t, s, user1)
	if _, err := s.Open(ctx, user1); !errors.Is(err, ErrInUse) {
		t.Fatalf("Open while held: %v, want ErrInUse", err)
	}
	if err := ss.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ss.Close() // safe after Commit
	ss = mustOpen(t, s, user1)
	ss.Close()
}

func TestCommitDeletesOnlyMarked(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	dir := t.TempDir()
	for i := range 4 {
		if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, dir, fmt.Sprint(i), msgBody(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ss := mustOpen(t, s, user1)
	all := ss.List()
	if err := ss.Commit(context.Background(), []int{1, 3, 3}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := ss.Open(context.Background(), 0); !errors.Is(err, ErrDone) {
		t.Errorf("Session.Open after Commit: %v, want ErrDone", err)
	}
	if err := ss.Commit(context.Background(), nil); !errors.Is(err, ErrDone) {
		t.Errorf("second Commit: %v, want ErrDone", err)
	}
	ss = mustOpen(t, s, user1)
	defer ss.Close()
	left := ss.List()
	if want := []Info{all[0], all[2]}; fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("after Commit([1 3]) = %v, want %v", left, want)
	}
	if n := names(t, filepath.Join(s.root, user1, dirCur)); len(n) != 2 {
		t.Errorf("cur/ = %v, want 2 files", n)
	}
}

func TestCommitBadIndexReleasesLock(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", msgBody(1))}); err != nil {
		t.Fatal(err)
	}
	ss := mustOpen(t, s, user1)
	if err := ss.Commit(context.Background(), []int{0, 1}); err == nil {
		t.Fatal("Commit with index 1 of 1 message succeeded")
	}
	ss = mustOpen(t, s, user1)
	defer ss.Close()
	if n := len(ss.List()); n != 1 {
		t.Errorf("%d messages after a rejected Commit, want 1", n)
	}
}

func TestCloseDeletesNothing(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	for i := range 2 {
		if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", msgBody(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ss := mustOpen(t, s, user1)
	ss.Close()
	ss.Close()
	if err := ss.Commit(context.Background(), []int{0}); !errors.Is(err, ErrDone) {
		t.Errorf("Commit after Close: %v, want ErrDone", err)
	}
	ss = mustOpen(t, s, user1)
	defer ss.Close()
	if n := len(ss.List()); n != 2 {
		t.Errorf("%d messages after Close, want 2", n)
	}
}

func TestDeliveryDuringSession(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	ctx := context.Background()
	dir := t.TempDir()
	if err := s.Deliver(ctx, Delivery{User: user1, BodyPath: spool(t, dir, "a", msgBody(1))}); err != nil {
		t.Fatal(err)
	}
	ss := mustOpen(t, s, user1)
	if err := s.Deliver(ctx, Delivery{User: user1, BodyPath: spool(t, dir, "b", msgBody(2))}); err != nil {
		t.Fatal(err)
	}
	if n := len(ss.List()); n != 1 {
		t.Errorf("listing grew to %d during the session", n)
	}
	if n := names(t, filepath.Join(s.root, user1, dirNew)); len(n) != 1 {
		t.Errorf("new/ = %v, want the new delivery", n)
	}
	if err := ss.Commit(ctx, []int{0}); err != nil {
		t.Fatal(err)
	}
	ss = mustOpen(t, s, user1)
	defer ss.Close()
	l := ss.List()
	if len(l) != 1 || l[0].Size != int64(len(stored("", user1, msgBody(2)))) {
		t.Errorf("next session lists %v, want the second message only", l)
	}
}

func TestConcurrentDeliver(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	src := spool(t, t.TempDir(), "m", msgBody(2)) // one spool file, 50 recipients' worth
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- s.Deliver(context.Background(), Delivery{User: user1, BodyPath: src}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, filepath.Join(s.root, user1, dirNew)); len(got) != n {
		t.Fatalf("new/ has %d files, want %d", len(got), n)
	}
	ss := mustOpen(t, s, user1)
	defer ss.Close()
	uids := map[string]bool{}
	for _, in := range ss.List() {
		uids[in.UID] = true
	}
	if len(uids) != n {
		t.Errorf("%d distinct UIDs, want %d", len(uids), n)
	}
}

func TestBadUserNames(t *testing.T) {
	t.Parallel()
	bad := []string{
		"", ".", "..", "../x@y", "a/b@c", `a\b@c`, "a\x00b@c", "a b@c", "a\tb@c",
		".hidden@c", "\xffx@c", "a\x7f@c", strings.Repeat("a", 256),
	}
	for _, u := range bad {
		root := t.TempDir()
		if _, err := New(Options{Root: root, Users: []string{u}}); err == nil {
			t.Errorf("New accepted user %q", u)
		}
		if n := names(t, root); len(n) != 0 {
			t.Errorf("user %q: root holds %v after a rejected New", u, n)
		}
	}
	// Every problem is reported at once; case-folded duplicates too.
	_, err := New(Options{Root: t.TempDir(), Users: []string{"..", "a/b", "A@x", "a@X"}})
	if err == nil {
		t.Fatal("New accepted bad users")
	}
	for _, want := range []string{`".."`, `"a/b"`, `"a@X"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(Options{Users: []string{user1}}); err == nil {
		t.Error("New accepted an empty Root")
	}
}

func TestNewLayout(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "mail")
	s, err := New(Options{Root: root, Users: []string{"Usr1@Mail.Sustech.Edu.Cn"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{dirTmp, dirNew, dirCur} {
		fi, err := os.Stat(filepath.Join(root, user1, sub))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want dir 0700", sub, fi.Mode())
		}
	}
	for _, u := range []string{user1, "USR1@MAIL.SUSTECH.EDU.CN"} {
		if _, err := s.actor(u); err != nil {
			t.Errorf("actor(%q): %v", u, err)
		}
	}
	if _, err := s.actor("usr2@mail.sustech.edu.cn"); !errors.Is(err, ErrNoUser) {
		t.Error("an unknown user has a mailbox")
	}
	if _, err := s.actor(""); !errors.Is(err, ErrNoUser) {
		t.Error("an unknown user has a mailbox")
	}
}

func TestUnknownUser(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	ctx := context.Background()
	if err := s.Deliver(ctx, Delivery{User: "nobody@x", BodyPath: spool(t, t.TempDir(), "m", "x\r\n")}); !errors.Is(err, ErrNoUser) {
		t.Errorf("Deliver: %v, want ErrNoUser", err)
	}
	if _, err := s.Open(ctx, "nobody@x"); !errors.Is(err, ErrNoUser) {
		t.Errorf("Open: %v, want ErrNoUser", err)
	}
}

func TestCanceledContexts(t *testing.T) {
	t.Parallel()
	s := startStore(t, zaptest.NewLogger(t), user1)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Open(canceled, user1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open(canceled): %v", err)
	}
	if err := s.Deliver(canceled, Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", "x\r\n")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver(canceled): %v", err)
	}
	for _, d := range []string{dirTmp, dirNew, dirCur} {
		if n := names(t, filepath.Join(s.root, user1, d)); len(n) != 0 {
			t.Errorf("%s/ = %v after canceled calls", d, n)
		}
	}
	// No lock was left behind; a Commit with a dead ctx still releases it.
	ss := mustOpen(t, s, user1)
	if err := ss.Commit(canceled, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit(canceled): %v", err)
	}
	ss = mustOpen(t, s, user1)
	ss.Close()
}

func TestStoppedStore(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Root: t.TempDir(), Users: []string{user1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	ss, err := s.Open(context.Background(), user1)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
	if _, err := s.Open(context.Background(), user1); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after stop: %v, want ErrClosed", err)
	}
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", "x\r\n")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Deliver after stop: %v, want ErrClosed", err)
	}
	ss.Close() // returns although no actor runs
}

// panicReq is a request type the actor does not know: serving it panics.
type panicReq struct{ reply chan error }

func (r *panicReq) fail(err error) { answer(r.reply, err) }

func TestActorSurvivesPanic(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.ErrorLevel)
	s := startStore(t, zap.New(core), user1)
	r := &panicReq{reply: make(chan error, 1)}
	if err := s.actors[user1].send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := <-r.reply; !errors.Is(err, errPanic) {
		t.Fatalf("reply %v, want errPanic", err)
	}
	if n := logs.FilterMessage("mailbox actor panic").Len(); n != 1 {
		t.Errorf("%d panic logs, want 1", n)
	}
	if err := s.Deliver(context.Background(), Delivery{User: user1, BodyPath: spool(t, t.TempDir(), "m", "x\r\n")}); err != nil {
		t.Fatalf("Deliver after panic: %v", err)
	}
}
