package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

func TestRestartAfterStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Second} })
	done := commit(t, q1, "s@x.test", []string{"a@x.test"}, "done\r\n")
	partial := commit(t, q1, "s@x.test", []string{"a@x.test", "b@x.test"}, "partial\r\n")
	failed := commit(t, q1, "s@x.test", []string{"a@x.test"}, "failed\r\n")
	// Uncommitted: a draft still open and an aborted one.
	open1, err := q1.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(open1, "never committed\r\n")
	ab, _ := q1.NewMessage(context.Background())
	io.WriteString(ab, "aborted\r\n")
	ab.Abort()

	var attempts atomic.Int32
	ctx1, cancel1 := context.WithCancel(context.Background())
	h1 := handlerFunc(func(ctx context.Context, m *Message) []Result {
		if attempts.Add(1) == 3 {
			cancel1() // stop Run before any retry is due
		}
		switch m.ID {
		case done:
			return allDone(m)
		case partial:
			return []Result{{Rcpt: "a@x.test"}, {Rcpt: "b@x.test", Err: errors.New("451")}}
		}
		return allTemp(m)
	})
	if err := q1.Run(ctx1, h1); err != nil {
		t.Fatal(err)
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d attempts before stop, want 3", n)
	}
	if q1.Len() != 1 { // the open draft
		t.Fatalf("q1.Len = %d after Run, want 1", q1.Len())
	}

	q2 := open(t, dir, nil)
	h2, ch := recorder(t, nil)
	stop := run(t, q2, h2)
	got := map[string]seen{}
	for range 2 {
		s := next(t, ch)
		got[s.ID] = s
	}
	if s, ok := got[partial]; !ok || s.Attempt != 2 || !slices.Equal(s.Rcpts, []string{"b@x.test"}) || s.Body != "partial\r\n" {
		t.Errorf("partial: %+v", s)
	}
	if s, ok := got[failed]; !ok || s.Attempt != 2 || !slices.Equal(s.Rcpts, []string{"a@x.test"}) {
		t.Errorf("failed: %+v", s)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q2.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Errorf("unexpected attempt of %s", (<-ch).ID)
	}
	assertEmptySpool(t, dir) // the open draft of q1 was removed as stale
	open1.Abort()
}

func TestRestartAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	m1 := commit(t, q1, "s@x.test", []string{"a@x.test"}, "one\r\n")
	m2 := commit(t, q1, "", []string{"b@x.test"}, "two\r\n")
	// Crash traces: a draft in msg/ (a crash mid-DATA), a body in msg/
	// without its envelope or a mark (as an older gomta left one), an add
	// record whose body is not there, and one whose body is short, and a
	// torn record at the end of the journal. The draft goes; the bodies
	// that may have had a 250 are set aside in corrupt/.
	d, _ := q1.NewMessage(context.Background())
	io.WriteString(d, "half a message")
	orphanID, ghostID, shortID := q1.newID(), q1.newID(), q1.newID()
	mustWrite(t, filepath.Join(dir, "msg", orphanID), "orphan")
	ghost := fmt.Sprintf(`{"id":%q,"rcpts":["g@x.test"],"size":3}`, ghostID)
	short := fmt.Sprintf(`{"id":%q,"rcpts":["g@x.test"],"size":30}`, shortID)
	if err := q1.j.appendSync(rec{kind: recAdd, id: ghostID, env: []byte(ghost)},
		rec{kind: recAdd, id: shortID, env: []byte(short)}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "msg", shortID), "short")
	tornID := q1.newID()
	mustWrite(t, filepath.Join(dir, "msg", tornID), "torn")
	rec := appendRecord(nil, rec{kind: recAdd, id: tornID, env: []byte(fmt.Sprintf(`{"id":%q,"rcpts":["g@x.test"],"size":4}`, tornID))})
	appendFile(t, filepath.Join(dir, "journal"), rec[:len(rec)-3])

	q2 := open(t, dir, nil)
	h, ch := recorder(t, nil)
	stop := run(t, q2, h)
	got := map[string]string{}
	for range 2 {
		s := next(t, ch)
		got[s.ID] = s.Body
	}
	if got[m1] != "one\r\n" || got[m2] != "two\r\n" {
		t.Fatalf("delivered %v, want %s and %s", got, m1, m2)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q2.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Fatalf("unexpected attempt of %s", (<-ch).ID)
	}
	aside := files(t, dir, "corrupt")
	slices.Sort(aside)
	want := []string{orphanID, shortID, tornID}
	slices.Sort(want)
	if !slices.Equal(aside, want) {
		t.Fatalf("corrupt/ holds %v, want %v", aside, want)
	}
	for _, id := range want {
		if err := os.Remove(filepath.Join(dir, "corrupt", id)); err != nil {
			t.Fatal(err)
		}
	}
	assertEmptySpool(t, dir)
	d.Abort()
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestScheduleKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	h, ch := recorder(t, allTemp)
	id := commit(t, q1, "s@x.test", []string{"a@x.test"}, "x\r\n")
	stop := run(t, q1, h)
	next(t, ch)
	mtatest.Eventually(t, "retry scheduled", func() bool {
		env, err := q1.readEnvelope(id)
		return err == nil && env.Attempts == 1
	})
	stop()
	env, err := q1.readEnvelope(id)
	if err != nil {
		t.Fatal(err)
	}
	if env.Next.Before(time.Now().Add(50*time.Minute)) || env.Errors["a@x.test"] != "451 try later" ||
		!slices.Equal(env.Rcpts, []string{"a@x.test"}) {
		t.Fatalf("envelope after a failed attempt: %+v", env)
	}
	// A new Queue loads it due at its saved next attempt, an hour away, not
	// at once; Retry makes it due, as the attempt after the one already made.
	q2 := open(t, dir, nil)
	h2, ch2 := recorder(t, nil)
	stop2 := run(t, q2, h2)
	list, err := q2.List(context.Background())
	if err != nil || len(list) != 1 || !list[0].Next.Equal(env.Next) || list[0].Busy {
		t.Fatalf("after restart: %+v %v, want one idle message due at %v", list, err, env.Next)
	}
	retryAll(t, q2)
	m := next(t, ch2)
	stop2()
	if m.Attempt != 2 || m.ID != id {
		t.Fatalf("after restart: attempt %d of %s, want attempt 2 of %s", m.Attempt, m.ID, id)
	}
}
