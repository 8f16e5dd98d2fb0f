package queue

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

const (
	traceFields = "Return-Path: <a@x.test>\r\nDelivered-To: u@local.test\r\n"
	traceBody   = "Received: by test\r\nSubject: traced\r\n\r\nhello\r\n"
)

// commitTraced commits a message to u@local.test whose body starts with
// its trace fields.
func commitTraced(t *testing.T, q *Queue) string {
	t.Helper()
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteTrace([]byte(traceFields), "u@local.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(d, traceBody); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(context.Background(), "a@x.test", []string{"u@local.test"}); err != nil {
		t.Fatal(err)
	}
	return d.ID()
}

func readOpen(t *testing.T, m *Message) string {
	t.Helper()
	rc, err := m.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTraceKeptFromRelayAndBounce: a body written with trace fields keeps
// them on disk (local delivery links it) and in the envelope, across a
// restart; what a relay or a report reads (Message.Open) starts after
// them, so a bounce of it carries no Delivered-To of ours.
func TestTraceKeptFromRelayAndBounce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	id := commitTraced(t, q)

	q = open(t, dir, nil) // the trace comes back from the journal
	opened := make(chan string, 4)
	h := handlerFunc(func(ctx context.Context, m *Message) []Result {
		if m.From == "" {
			return allDone(m) // the bounce itself
		}
		if m.Trace != (Trace{Len: int64(len(traceFields)), To: "u@local.test"}) || m.Size != int64(len(traceFields+traceBody)) {
			t.Errorf("message %s: Trace %+v, Size %d", m.ID, m.Trace, m.Size)
		}
		if raw, _ := os.ReadFile(m.BodyPath); string(raw) != traceFields+traceBody {
			t.Errorf("spool file %q", raw)
		}
		opened <- readOpen(t, m)
		return []Result{{Rcpt: m.Rcpts[0], Err: errors.New("550 no such user"), Permanent: true,
			Failure: Failure{Rcpt: m.Rcpts[0], Code: 550, Text: "no such user"}}}
	})
	var bounce string
	wb := &bounceWriter{handlerFunc: h, got: &bounce}
	stop := run(t, q, wb)
	select {
	case got := <-opened:
		if got != traceBody {
			t.Errorf("Message.Open read %q, want %q", got, traceBody)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt")
	}
	mtatest.Eventually(t, "message and its bounce done", func() bool { return len(files(t, dir, "msg")) == 0 })
	stop()
	if !strings.Contains(bounce, "Subject: traced") || strings.Contains(bounce, "Delivered-To") || strings.Contains(bounce, "Return-Path") {
		t.Errorf("bounce of %s carries the trace fields or lacks the original:\n%s", id, bounce)
	}
}

// bounceWriter is a Handler whose bounce quotes the original as
// Message.Open gives it, and keeps a copy.
type bounceWriter struct {
	handlerFunc
	got *string
}

func (b *bounceWriter) WriteBounce(w io.Writer, m *Message, failed []Failure) error {
	rc, err := m.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	orig, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	*b.got = "Subject: bounce\r\n\r\n" + string(orig)
	_, err = io.WriteString(w, *b.got)
	return err
}

// TestWriteTraceOnlyFirst: trace fields come before any octet of the body.
func TestWriteTraceOnlyFirst(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil)
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	io.WriteString(d, "Subject: x\r\n")
	if err := d.WriteTrace([]byte(traceFields), "u@local.test"); err == nil {
		t.Fatal("WriteTrace after the body's first octet succeeded")
	}
}

// TestOldEnvelopeLoadsWithoutTrace: a record written before Trace existed
// (no "trace" key) loads with none, and its body is read from octet 0.
func TestOldEnvelopeLoadsWithoutTrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	id := commit(t, q, "a@x.test", []string{"u@local.test"}, traceBody)
	for _, e := range journalLive(t, dir) {
		data, _ := json.Marshal(e)
		if strings.Contains(string(data), `"trace"`) {
			t.Fatalf("an untraced envelope records a trace: %s", data)
		}
	}
	old := `{"id":"` + id + `","from":"a@x.test","rcpts":["u@local.test"],"received":"2026-12-01T10:00:00Z",` +
		`"size":` + strconv.Itoa(len(traceBody)) + `,"attempts":0,"next_attempt":"2026-12-01T10:00:00Z"}`
	env := new(envelope)
	if err := json.Unmarshal([]byte(old), env); err != nil {
		t.Fatal(err)
	}
	if env.Trace != nil {
		t.Fatalf("old record: Trace %+v", env.Trace)
	}
	q = open(t, dir, nil)
	m := q.message(env, 1)
	if m.Trace != (Trace{}) {
		t.Errorf("Message.Trace %+v", m.Trace)
	}
	if got := readOpen(t, m); got != traceBody {
		t.Errorf("Open read %q", got)
	}
	h, ch := recorder(t, nil)
	run(t, q, h)
	if s := next(t, ch); s.Trace != (Trace{}) || s.Body != traceBody {
		t.Errorf("attempt: Trace %+v, body %q", s.Trace, s.Body)
	}
}

// TestDoneLinkedBodyLosesEnvelopeCopy: a traced body linked elsewhere (as
// local delivery links it into the Maildir) keeps no envelope copy once
// the message is done.
func TestDoneLinkedBodyLosesEnvelopeCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, nil)
	if !q.xattr.Load() {
		t.Skip("no extended attributes on this file system")
	}
	commitTraced(t, q)
	linked := filepath.Join(t.TempDir(), "maildir-file")
	h := handlerFunc(func(ctx context.Context, m *Message) []Result {
		if err := os.Link(m.BodyPath, linked); err != nil {
			t.Error(err)
		}
		if _, err := getXattr(linked, envXattr); err != nil {
			t.Errorf("committed body has no envelope copy: %v", err)
		}
		return allDone(m)
	})
	run(t, q, h)
	mtatest.Eventually(t, "message done, spool name removed", func() bool { return len(files(t, dir, "msg")) == 0 })
	if v, err := getXattr(linked, envXattr); err == nil {
		t.Errorf("the linked file keeps the envelope copy: %s", v)
	}
	if raw, _ := os.ReadFile(linked); string(raw) != traceFields+traceBody {
		t.Errorf("linked file %q", raw)
	}
}
