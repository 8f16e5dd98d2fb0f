package queue

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	id := "0123456789abcdefghij"
	for _, r := range []rec{
		{kind: recAdd, id: id, env: []byte(`{"id":"x"}`)},
		{kind: recDone, id: id},
	} {
		b := appendRecord([]byte("prefix"), r)[len("prefix"):]
		got, n, ok := nextRecord(append(b, "next"...))
		if !ok || n != len(b) || got.kind != r.kind || got.id != r.id || !bytes.Equal(got.env, r.env) || int64(n) != r.size() {
			t.Fatalf("%+v: got %+v, %d, %v", r, got, n, ok)
		}
		for cut := range len(b) {
			if _, _, ok := nextRecord(b[:cut]); ok {
				t.Fatalf("record cut at %d of %d accepted", cut, len(b))
			}
		}
		for i := range b {
			c := slices.Clone(b)
			c[i] ^= 0x20
			if got, _, ok := nextRecord(c); ok && i >= recHeader {
				t.Fatalf("flipped octet %d accepted: %+v", i, got)
			}
		}
	}
	if _, _, ok := nextRecord(make([]byte, 64)); ok {
		t.Fatal("zeros accepted as a record")
	}
}

// TestTornTailCutBeforeAppend: a torn record at the end of the journal is
// cut off at Open, so that what this Queue commits before Run (and after) is
// not hidden behind it.
func TestTornTailCutBeforeAppend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	m1 := commit(t, q1, "s@x.test", []string{"a@x.test"}, "one\r\n")
	jpath := filepath.Join(dir, "journal")
	st, err := os.Stat(jpath)
	if err != nil {
		t.Fatal(err)
	}
	r := appendRecord(nil, rec{kind: recAdd, id: q1.newID(), env: []byte(`{"id":"torn"}`)})
	appendFile(t, jpath, r[:len(r)-1])

	q2 := open(t, dir, nil)
	if st2, err := os.Stat(jpath); err != nil || st2.Size() != st.Size() {
		t.Fatalf("journal not cut back to %d octets: %v %v", st.Size(), st2.Size(), err)
	}
	m2 := commit(t, q2, "s@x.test", []string{"a@x.test"}, "two\r\n")

	q3 := open(t, dir, nil)
	h, ch := recorder(t, nil)
	stop := run(t, q3, h)
	got := map[string]string{}
	for range 2 {
		s := next(t, ch)
		got[s.ID] = s.Body
	}
	if got[m1] != "one\r\n" || got[m2] != "two\r\n" {
		t.Fatalf("delivered %v, want %s and %s", got, m1, m2)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q3.Len() == 0 })
	stop()
	assertEmptySpool(t, dir)
}

// TestCompactWhileAppending compacts the journal again and again while
// other goroutines add, update and finish messages, then checks that a
// replay of the file gives exactly the live picture kept in memory.
func TestCompactWhileAppending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	j := q.j
	var wg sync.WaitGroup
	stopCompact := make(chan struct{})
	compactions := 0
	wg.Go(func() {
		for {
			select {
			case <-stopCompact:
				return
			default:
			}
			if _, _, err := j.compact(); err != nil {
				t.Error(err)
				return
			}
			compactions++
		}
	})
	var writers sync.WaitGroup
	for g := range 4 {
		writers.Go(func() {
			for i := range 300 {
				id := q.newID()
				env := fmt.Appendf(nil, `{"id":%q,"size":%d}`, id, i)
				off, err := j.append(rec{kind: recAdd, id: id, env: env})
				if err == nil {
					err = j.syncTo(off)
				}
				if err != nil {
					t.Error(err)
					return
				}
				switch i % 3 {
				case 0:
					_, err = j.append(rec{kind: recDone, id: id})
				case 1:
					_, err = j.append(rec{kind: recUpdate, id: id, env: fmt.Appendf(nil, `{"id":%q,"attempts":%d}`, id, g)})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stopCompact)
	wg.Wait()
	if compactions == 0 {
		t.Fatal("no compaction ran")
	}
	want := j.snapshot()
	if len(want) != 4*200 {
		t.Fatalf("%d live in memory, want 800", len(want))
	}
	j2, st, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j2.f.Close()
	if st.torn != 0 || st.skipped != 0 {
		t.Fatalf("replay: %+v", st)
	}
	if !maps.EqualFunc(want, j2.live, bytes.Equal) {
		t.Fatalf("replay has %d live, memory %d; they differ", len(j2.live), len(want))
	}
	if j2.liveBytes != j.liveBytes {
		t.Fatalf("live bytes %d after replay, %d in memory", j2.liveBytes, j.liveBytes)
	}
}

// TestCompactionByRun: with a tiny threshold, Run compacts the journal as
// messages come and go; the messages still waiting survive it and a restart.
func TestCompactionByRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	q.j.compactMin = 4 << 10
	keep := map[string]bool{}
	for i := range 5 {
		keep[commit(t, q, "s@x.test", []string{"a@x.test"}, fmt.Sprintf("keep %d\r\n", i))] = true
	}
	h, _ := recorder(t, func(m *Message) []Result {
		if keep[m.ID] {
			return allTemp(m)
		}
		return allDone(m)
	})
	stop := run(t, q, h)
	for i := range 200 {
		commit(t, q, "s@x.test", []string{"b@x.test"}, fmt.Sprintf("go %d\r\n", i))
	}
	mtatest.Eventually(t, "only the kept ones left", func() bool { return q.Len() == len(keep) })
	// Compacted: the file is smaller than everything ever appended to it,
	// and no further compaction is due (its size is not over twice the
	// live envelopes, whose size depends on what each envelope carries).
	mtatest.Eventually(t, "journal compacted", func() bool {
		st, err := os.Stat(filepath.Join(dir, "journal"))
		q.j.mu.Lock()
		written := q.j.written
		q.j.mu.Unlock()
		return err == nil && st.Size() < written && !q.j.needCompact()
	})
	stop()
	live := journalLive(t, dir)
	if len(live) != len(keep) {
		t.Fatalf("journal holds %d, want %d", len(live), len(keep))
	}
	for id, env := range live {
		if !keep[id] || env.Attempts != 1 || env.Errors["a@x.test"] == "" {
			t.Errorf("%s: %+v", id, env)
		}
	}
	if f := files(t, dir, "msg"); len(f) != len(keep) {
		t.Errorf("msg/ holds %d bodies", len(f))
	}
}

// FuzzJournalReplay: any journal content opens without error, the torn
// part is cut off, and opening again finds the same live messages.
func FuzzJournalReplay(f *testing.F) {
	id := "0123456789abcdefghij"
	good := appendRecord(nil, rec{kind: recAdd, id: id, env: []byte(`{"id":"0123456789abcdefghij"}`)})
	f.Add([]byte{})
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(appendRecord(slices.Clone(good), rec{kind: recDone, id: id}))
	f.Add(appendRecord(slices.Clone(good), rec{kind: 'X', id: id}))
	f.Add(append(slices.Clone(good), make([]byte, 30)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "journal")
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		j, st, err := openJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		j.f.Close()
		if j.size+st.torn != int64(len(data)) {
			t.Fatalf("size %d + torn %d != %d", j.size, st.torn, len(data))
		}
		j2, st2, err := openJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		j2.f.Close()
		if st2.torn != 0 || j2.size != j.size || !maps.EqualFunc(j.live, j2.live, bytes.Equal) {
			t.Fatalf("second open differs: %+v, %d live vs %d", st2, len(j2.live), len(j.live))
		}
	})
}
