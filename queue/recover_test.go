package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// TestDoneRecordRemovesTheBody: a crash between a message's done record and
// the unlink of its body leaves the body (with its envelope copy) and the
// done record: the body goes at the next start; it is not recovered.
func TestDoneRecordRemovesTheBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	id := commit(t, q1, "s@x.test", []string{"a@x.test"}, "delivered already\r\n")
	off, err := q1.j.append(rec{kind: recDone, id: id})
	if err == nil {
		err = q1.j.syncTo(off)
	}
	if err != nil {
		t.Fatal(err)
	}
	q2, logs := observed(t, dir, nil)
	marker := commit(t, q2, "s@x.test", []string{"a@x.test"}, "marker\r\n")
	got := deliverAll(t, q2, 1)
	if _, ok := got[marker]; !ok || len(got) != 1 {
		t.Fatalf("delivered %v, want only the marker", got)
	}
	if l := logs.FilterMessage("spool loaded").All(); len(l) != 1 || l[0].ContextMap()["stale_files"] != int64(1) {
		t.Fatalf("spool loaded: %v", l)
	}
	assertEmptySpool(t, dir)
}

// TestCrashedDraftIsRemoved: a draft a crash interrupted (mode 0400, no
// record) is removed at the next start, neither recovered nor set aside.
func TestCrashedDraftIsRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	d, err := q1.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("Subject: half\r\n\r\nhalf a mess")); err != nil {
		t.Fatal(err)
	}
	q2, logs := observed(t, dir, nil) // q1 "crashed": its draft is nobody's
	run(t, q2, handlerFunc(allDone2))
	mtatest.Eventually(t, "spool loaded", func() bool { return logs.FilterMessage("spool loaded").Len() == 1 })
	l := logs.FilterMessage("spool loaded").All()[0].ContextMap()
	if l["stale_files"] != int64(1) || l["recovered"] != int64(0) || l["corrupt"] != int64(0) {
		t.Fatalf("spool loaded %v, want the draft removed as stale", l)
	}
	assertEmptySpool(t, dir)
	d.Abort()
}

func allDone2(_ context.Context, m *Message) []Result { return allDone(m) }

// TestUnusableEnvelopeRecovered: a live record that does not decode is
// replaced by the envelope copy on the body, and the message delivered.
func TestUnusableEnvelopeRecovered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	id := commit(t, q1, "s@x.test", []string{"a@x.test", "b@x.test"}, "Subject: x\r\n\r\nx\r\n")
	off, err := q1.j.append(rec{kind: recUpdate, id: id, env: []byte("{not json")})
	if err == nil {
		err = q1.j.syncTo(off)
	}
	if err != nil {
		t.Fatal(err)
	}
	q2, logs := observed(t, dir, nil)
	got := deliverAll(t, q2, 1)
	if s := got[id]; !slices.Equal(s.Rcpts, []string{"a@x.test", "b@x.test"}) {
		t.Fatalf("recovered message: %+v", s)
	}
	if logs.FilterMessage("envelope unusable").Len() != 1 || logs.FilterMessage("message recovered from its spool file").Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	assertEmptySpool(t, dir)
}

// TestUpdateOutlivesItsDamagedAdd: when the add record is damaged but a
// later update is whole, the update (done recipients gone, attempts kept)
// wins over the older copy on the body.
func TestUpdateOutlivesItsDamagedAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, func(o *Options) { o.Retry = []time.Duration{time.Hour} })
	id := commit(t, q1, "s@x.test", []string{"a@x.test", "b@x.test"}, "Subject: x\r\n\r\nx\r\n")
	h1, ch1 := recorder(t, func(m *Message) []Result {
		return []Result{{Rcpt: "a@x.test"}, {Rcpt: "b@x.test", Err: errors.New("451 later")}}
	})
	stop := run(t, q1, h1)
	next(t, ch1)
	mtatest.Eventually(t, "the update record", func() bool {
		env, err := q1.readEnvelope(id)
		return err == nil && env.Attempts == 1
	})
	stop()
	flipFirstRecord(t, dir)
	q2 := open(t, dir, nil)
	got := deliverAll(t, q2, 1)
	if s := got[id]; !slices.Equal(s.Rcpts, []string{"b@x.test"}) || s.Attempt != 2 {
		t.Fatalf("after a damaged add record: %+v, want b@x.test only, attempt 2", s)
	}
}

// TestLargeEnvelopeCommits: an envelope too large for one extended
// attribute (ext4: about 4 KiB) is committed all the same, without a copy.
func TestLargeEnvelopeCommits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, logs := observed(t, dir, nil)
	var rcpts []string
	for i := range 150 {
		rcpts = append(rcpts, fmt.Sprintf("recipient-with-a-long-name-%03d@x.test", i))
	}
	id, err := q.Submit(context.Background(), "s@x.test", rcpts, strings.NewReader("x\r\n"))
	if err != nil {
		t.Fatalf("150 recipients: %v", err)
	}
	// Where the file system did not take the copy, a line says so.
	if _, err := getXattr(q.bodyPath(id), envXattr); err != nil && logs.FilterMessage("envelope copy not kept on the body").Len() != 1 {
		t.Fatalf("no copy (%v) and no line saying so", err)
	}
}

// TestStopDuringFinalAttemptBouncesNothing: a final attempt that a stop cuts
// short leaves its recipients queued, not bounced, and is made again.
func TestStopDuringFinalAttemptBouncesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1, logs := observed(t, dir, func(o *Options) { o.Retry = []time.Duration{} })
	id := commit(t, q1, "s@x.test", []string{"a@x.test"}, "x\r\n")
	started := make(chan struct{})
	h1 := handlerFunc(func(ctx context.Context, m *Message) []Result {
		close(started)
		<-ctx.Done()
		return []Result{{Rcpt: "a@x.test", Err: fmt.Errorf("relay: %w", ctx.Err())}}
	})
	stop := run(t, q1, h1)
	<-started
	stop()
	if logs.FilterMessage("bounce queued").Len() != 0 || logs.FilterMessage("recipient failed permanently").Len() != 0 {
		t.Fatalf("a stop during the final attempt bounced: %v", logs.All())
	}
	q2 := open(t, dir, func(o *Options) { o.Retry = []time.Duration{} })
	got := deliverAll(t, q2, 1)
	if s := got[id]; s.Attempt != 1 || !s.Final {
		t.Fatalf("after the stop: %+v, want the final attempt again", s)
	}
}
