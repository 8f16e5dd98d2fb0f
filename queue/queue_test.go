package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"gomta/mta/mtatest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir) // exits
	}
	goleak.VerifyTestMain(m)
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, m *Message) []Result

func (f handlerFunc) Deliver(ctx context.Context, m *Message) []Result { return f(ctx, m) }

// WriteBounce writes a short bounce naming the original and the failures.
func (f handlerFunc) WriteBounce(w io.Writer, m *Message, failed []Failure) error {
	_, err := fmt.Fprintf(w, "Subject: bounce of %s\r\n\r\n", m.ID)
	for _, x := range failed {
		if err == nil {
			_, err = fmt.Fprintf(w, "%s %d %s %s status=%s\r\n", x.Rcpt, x.Code, x.Enhanced, x.Text, x.Status)
		}
	}
	return err
}

// WriteDelay writes a short delay notice naming the original, the pending
// recipients with their last failure, and when they expire.
func (f handlerFunc) WriteDelay(w io.Writer, m *Message, pending []Failure) error {
	_, err := fmt.Fprintf(w, "Subject: delay of %s until %s\r\n\r\n", m.ID, m.Expires.Format(time.RFC3339Nano))
	for _, x := range pending {
		if err == nil {
			_, err = fmt.Fprintf(w, "%s %d %s %s\r\n", x.Rcpt, x.Code, x.Enhanced, x.Text)
		}
	}
	return err
}

// WriteSuccess writes a short success notice naming the original and the
// recipients with their Action.
func (f handlerFunc) WriteSuccess(w io.Writer, m *Message, done []Failure) error {
	_, err := fmt.Fprintf(w, "Subject: success of %s\r\n\r\n", m.ID)
	for _, x := range done {
		if err == nil {
			_, err = fmt.Fprintf(w, "%s %s %s\r\n", x.Rcpt, x.Action, x.Remote)
		}
	}
	return err
}

// seen is one attempt as the handler saw it.
type seen struct {
	Message
	Body string
}

// recorder returns a handler that records every attempt on a channel and
// answers with decide (nil decide: every recipient done).
func recorder(t *testing.T, decide func(m *Message) []Result) (Handler, <-chan seen) {
	ch := make(chan seen, 1000)
	return handlerFunc(func(ctx context.Context, m *Message) []Result {
		body, err := os.ReadFile(m.BodyPath)
		if err != nil {
			t.Errorf("attempt %d of %s: read body: %v", m.Attempt, m.ID, err)
		}
		s := seen{Message: *m, Body: string(body)}
		s.Rcpts = slices.Clone(m.Rcpts)
		select {
		case ch <- s:
		default: // never block Run's shutdown
			t.Errorf("too many attempts (%s attempt %d)", m.ID, m.Attempt)
		}
		if decide == nil {
			return allDone(m)
		}
		return decide(m)
	}), ch
}

func allDone(m *Message) []Result {
	res := make([]Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i] = Result{Rcpt: r}
	}
	return res
}

func allTemp(m *Message) []Result {
	res := make([]Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i] = Result{Rcpt: r, Err: errors.New("451 try later")}
	}
	return res
}

func open(t *testing.T, dir string, mod func(*Options)) *Queue {
	t.Helper()
	opt := Options{Dir: dir, Host: "test", Logger: zaptest.NewLogger(t), Retry: []time.Duration{time.Millisecond}}
	if mod != nil {
		mod(&opt)
	}
	q, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// run starts q.Run and returns a function that stops it and waits.
func run(t *testing.T, q *Queue, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func commit(t *testing.T, q *Queue, from string, rcpts []string, body string) string {
	t.Helper()
	id, err := q.Submit(context.Background(), from, rcpts, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// next waits for the next attempt (bounded).
func next(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery attempt")
		return seen{}
	}
}

// files lists the files under sub of dir.
func files(t *testing.T, dir, sub string) []string {
	t.Helper()
	names, err := listDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// journalLive replays dir's journal as a new Queue would and returns the
// live envelopes.
func journalLive(t *testing.T, dir string) map[string]envelope {
	t.Helper()
	j, _, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	m := map[string]envelope{}
	for id, data := range j.live {
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatalf("journal: %s: %v", id, err)
		}
		m[id] = env
	}
	return m
}

func liveIDs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for id := range journalLive(t, dir) {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func assertEmptySpool(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"msg", "corrupt"} {
		if f := files(t, dir, sub); len(f) != 0 {
			t.Errorf("%s/ not empty: %v", sub, f)
		}
	}
	if ids := liveIDs(t, dir); len(ids) != 0 {
		t.Errorf("journal holds %v", ids)
	}
}

// readEnvelope returns the live envelope of id, checked against its body.
func (q *Queue) readEnvelope(id string) (*envelope, error) {
	data, ok := q.j.get(id)
	if !ok {
		return nil, fmt.Errorf("queue: envelope %s: %w", id, fs.ErrNotExist)
	}
	return q.checkEnvelope(id, data)
}

func TestCommitThenRunDelivers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: hi\r\n\r\nhello\r\n"
	if _, err := io.WriteString(d, body); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"a@x.test", "b@y.test"}
	if err := d.Commit(context.Background(), "s@x.test", rcpts); err != nil {
		t.Fatal(err)
	}
	if got := liveIDs(t, dir); !slices.Equal(got, []string{d.ID()}) {
		t.Fatalf("journal holds %v, want [%s]", got, d.ID())
	}
	if got := files(t, dir, "msg"); !slices.Equal(got, []string{d.ID()}) {
		t.Fatalf("msg/ = %v, want [%s]", got, d.ID())
	}
	if q.Len() != 1 {
		t.Fatalf("Len = %d, want 1", q.Len())
	}
	h, ch := recorder(t, nil)
	stop := run(t, q, h)
	s := next(t, ch)
	if s.ID != d.ID() || s.From != "s@x.test" || !slices.Equal(s.Rcpts, rcpts) ||
		s.Attempt != 1 || s.Final || s.Body != body || s.Size != int64(len(body)) {
		t.Fatalf("attempt = %+v", s)
	}
	mtatest.Eventually(t, "message removed", func() bool { return q.Len() == 0 })
	stop()
	assertEmptySpool(t, dir)
}

func TestCommitWhileRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) { o.Workers = 3 })
	h, ch := recorder(t, nil)
	stop := run(t, q, h)
	const n = 40
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := i; j < n; j += 8 {
				ids <- commit(t, q, "", []string{"r@x.test"}, fmt.Sprintf("body %d\r\n", j))
			}
		})
	}
	wg.Wait()
	close(ids)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	for range n {
		s := next(t, ch)
		if !want[s.ID] {
			t.Fatalf("unexpected or repeated delivery of %s", s.ID)
		}
		delete(want, s.ID)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Fatalf("%d extra attempts", len(ch))
	}
	assertEmptySpool(t, dir)
}

func TestRetryUntilSuccess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) {
		o.Retry = []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond}
	})
	h, ch := recorder(t, func(m *Message) []Result {
		if m.Attempt < 3 {
			return allTemp(m)
		}
		return allDone(m)
	})
	id := commit(t, q, "s@x.test", []string{"a@x.test"}, "x\r\n")
	stop := run(t, q, h)
	for want := 1; want <= 3; want++ {
		s := next(t, ch)
		if s.ID != id || s.Attempt != want || s.Final {
			t.Fatalf("attempt %d: got %+v", want, s.Message)
		}
	}
	mtatest.Eventually(t, "message removed", func() bool { return q.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Fatalf("%d attempts after success", len(ch))
	}
	assertEmptySpool(t, dir)
}

func TestFinalAfterScheduleExhausted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Millisecond, time.Millisecond} })
	h, ch := recorder(t, func(m *Message) []Result {
		if m.From == "" {
			return allDone(m) // the bounce
		}
		return allTemp(m)
	})
	id := commit(t, q, "s@x.test", []string{"a@x.test", "b@x.test"}, "x\r\n")
	stop := run(t, q, h)
	for want := 1; want <= 3; want++ {
		s := next(t, ch)
		if s.Attempt != want || s.Final != (want == 3) || len(s.Rcpts) != 2 {
			t.Fatalf("attempt %d: got %+v", want, s.Message)
		}
	}
	// The final attempt's temporary failures are bounced by the queue.
	b := next(t, ch)
	if b.From != "" || !slices.Equal(b.Rcpts, []string{"s@x.test"}) || !strings.Contains(b.Body, "bounce of "+id) ||
		!strings.Contains(b.Body, "a@x.test") || !strings.Contains(b.Body, "451 try later") {
		t.Fatalf("bounce: %+v", b)
	}
	mtatest.Eventually(t, "message and bounce done", func() bool { return q.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Fatalf("%d attempts after the final one", len(ch))
	}
	assertEmptySpool(t, dir)
}

func TestEmptyRetryMeansFirstAttemptIsFinal(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.Retry = []time.Duration{} })
	h, ch := recorder(t, allTemp)
	commit(t, q, "", []string{"a@x.test"}, "x\r\n")
	run(t, q, h)
	if s := next(t, ch); s.Attempt != 1 || !s.Final {
		t.Fatalf("got %+v", s.Message)
	}
}

func TestPartialResults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	h, ch := recorder(t, func(m *Message) []Result {
		if m.Attempt == 1 {
			// a done, b temporary, c left without a result (temporary too).
			return []Result{{Rcpt: "a@x.test"}, {Rcpt: "b@x.test", Err: errors.New("452 mailbox busy")}}
		}
		return allDone(m)
	})
	commit(t, q, "s@x.test", []string{"a@x.test", "b@x.test", "c@x.test"}, "x\r\n")
	stop := run(t, q, h)
	if s := next(t, ch); s.Attempt != 1 || len(s.Rcpts) != 3 {
		t.Fatalf("attempt 1: %+v", s.Message)
	}
	if s := next(t, ch); s.Attempt != 2 || !slices.Equal(s.Rcpts, []string{"b@x.test", "c@x.test"}) {
		t.Fatalf("attempt 2: %+v", s.Message)
	}
	mtatest.Eventually(t, "message removed", func() bool { return q.Len() == 0 })
	stop()
	assertEmptySpool(t, dir)
}

func TestPanicIsTemporaryFailure(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil)
	h, ch := recorder(t, func(m *Message) []Result {
		if m.Attempt == 1 {
			panic("handler bug")
		}
		return allDone(m)
	})
	commit(t, q, "s@x.test", []string{"a@x.test", "b@x.test"}, "x\r\n")
	run(t, q, h)
	next(t, ch)
	if s := next(t, ch); s.Attempt != 2 || len(s.Rcpts) != 2 {
		t.Fatalf("attempt 2: %+v", s.Message)
	}
	mtatest.Eventually(t, "message removed", func() bool { return q.Len() == 0 })
}

func TestWorkersBound(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.Workers = 2 })
	var cur, peak, calls atomic.Int32
	release := make(chan struct{})
	h := handlerFunc(func(ctx context.Context, m *Message) []Result {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		calls.Add(1)
		<-release
		cur.Add(-1)
		return allDone(m)
	})
	for range 6 {
		commit(t, q, "", []string{"a@x.test"}, "x\r\n")
	}
	run(t, q, h)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before Run is stopped
	mtatest.Eventually(t, "two attempts", func() bool { return calls.Load() >= 2 })
	unblock()
	mtatest.Eventually(t, "all delivered", func() bool { return q.Len() == 0 })
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d attempts at once, Workers is 2", p)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte(strings.Repeat("x", 100000))); err != nil {
		t.Fatal(err)
	}
	d.Abort()
	d.Abort()
	assertEmptySpool(t, dir)
	if q.Len() != 0 {
		t.Fatalf("Len = %d", q.Len())
	}
	if _, err := d.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
	if err := d.Commit(context.Background(), "", []string{"a@x.test"}); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	assertEmptySpool(t, dir)
}

func TestErrFull(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.MaxMessages = 2 })
	ctx := context.Background()
	d1, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Submit(ctx, "", []string{"a@x.test"}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.NewMessage(ctx); !errors.Is(err, ErrFull) {
		t.Fatalf("third NewMessage: %v, want ErrFull", err)
	}
	if _, err := q.Submit(ctx, "", []string{"a@x.test"}, strings.NewReader("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("Submit when full: %v, want ErrFull", err)
	}
	d1.Abort()
	d3, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatalf("NewMessage after Abort: %v", err)
	}
	if err := d3.Commit(ctx, "", []string{"a@x.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.NewMessage(ctx); !errors.Is(err, ErrFull) {
		t.Fatalf("NewMessage with 2 committed: %v, want ErrFull", err)
	}
	if q.Len() != 2 {
		t.Fatalf("Len = %d", q.Len())
	}
	// Delivering frees the places.
	h, ch := recorder(t, nil)
	run(t, q, h)
	next(t, ch)
	next(t, ch)
	mtatest.Eventually(t, "places freed", func() bool { return q.Len() == 0 })
	d4, err := q.NewMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d4.Abort()
}

func TestUnlimited(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) { o.MaxMessages = -1 })
	for range 5 {
		d, err := q.NewMessage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Abort()
	}
}

func TestSubmitBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	body := strings.Repeat("0123456789abcdef", 10000) // larger than the write buffer
	id := commit(t, q, "", []string{"postmaster@x.test"}, body)
	st, err := os.Stat(filepath.Join(dir, "msg", id))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o222 != 0 {
		t.Errorf("body mode %v, want read-only", st.Mode())
	}
	h, ch := recorder(t, nil)
	run(t, q, h)
	if s := next(t, ch); s.ID != id || s.From != "" || s.Body != body {
		t.Fatalf("got %s from %q, %d octets", s.ID, s.From, len(s.Body))
	}
}

func TestSubmitReadError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	r := io.MultiReader(strings.NewReader("part"), errReader{})
	if _, err := q.Submit(context.Background(), "", []string{"a@x.test"}, r); err == nil {
		t.Fatal("Submit succeeded")
	}
	assertEmptySpool(t, dir)
	if q.Len() != 0 {
		t.Fatalf("Len = %d", q.Len())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestCommitDiskError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "body\r\n")
	// msg/ goes away under the draft: the commit's fsync of msg/ fails.
	if err := os.Rename(filepath.Join(dir, "msg"), filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	err = d.Commit(context.Background(), "", []string{"a@x.test"})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), d.ID()) {
		t.Fatalf("Commit: %v, want a wrapped ErrNotExist naming the message", err)
	}
	if ids := liveIDs(t, dir); len(ids) != 0 {
		t.Errorf("journal holds %v", ids)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d", q.Len())
	}
}

func TestCommitNeedsRecipients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	d, _ := q.NewMessage(context.Background())
	if err := d.Commit(context.Background(), "", nil); err == nil {
		t.Fatal("Commit without recipients succeeded")
	}
	assertEmptySpool(t, dir)
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil)
	h, _ := recorder(t, nil)
	run(t, q, h)
	mtatest.Eventually(t, "Run started", func() bool { return q.inRun.Load() })
	if err := q.Run(context.Background(), h); err == nil {
		t.Fatal("second concurrent Run succeeded")
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil)
	ids := map[string]bool{}
	for range 20000 {
		id := q.newID()
		if !validID(id) || ids[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		ids[id] = true
	}
	a := q.newID()
	time.Sleep(2 * time.Millisecond)
	if b := q.newID(); b <= a {
		t.Fatalf("id %s taken later sorts before %s", b, a)
	}
	if validID("0123456789abcdefghiw") || validID("short") {
		t.Fatal("validID accepts a bad id")
	}
}
