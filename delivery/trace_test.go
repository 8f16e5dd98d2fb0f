package delivery

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gomta/delivery/mailbox"
	"gomta/delivery/relay"
	"gomta/queue"
)

// openingRelay reads each job's message as the relay sends it.
type openingRelay struct {
	mu   sync.Mutex
	sent []string
}

func (r *openingRelay) Deliver(_ context.Context, j relay.Job) relay.Outcome {
	out := relay.Outcome{MX: "mx." + j.Domain, Errs: make([]error, len(j.Rcpts))}
	rc, err := j.Open()
	if err != nil {
		out.Errs[0] = err
		return out
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	out.Errs[0] = err
	r.mu.Lock()
	r.sent = append(r.sent, string(b))
	r.mu.Unlock()
	return out
}

// recordingMailboxes keeps each Delivery.
type recordingMailboxes struct {
	mu  sync.Mutex
	got []mailbox.Delivery
}

func (f *recordingMailboxes) Deliver(_ context.Context, d mailbox.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, d)
	return nil
}

// tracedMessage is a message queued with trace fields for its only
// recipient rcpt (written at DATA, mta.envelopeDraft).
func tracedMessage(t *testing.T, rcpt string) (*queue.Message, string) {
	t.Helper()
	fields, acct := mailbox.TraceFields("s@far.test", rcpt)
	body := "Received: by mx\r\nSubject: hello\r\nMessage-ID: <m1@test>\r\n\r\nbody\r\n"
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, append(fields, body...), 0o440); err != nil {
		t.Fatal(err)
	}
	return &queue.Message{ID: "M1", From: "s@far.test", Rcpts: []string{rcpt}, Received: time.Now(), Attempt: 1,
		BodyPath: p, Size: int64(len(fields) + len(body)), Trace: queue.Trace{Len: int64(len(fields)), To: acct}}, body
}

// TestTracedMessageLeavesWithoutItsFields: a message queued with the trace
// fields of its local recipient is handed to the mailbox with them (to be
// linked); relayed (its domain no longer local after a reload) or bounced
// (its account removed), it carries none of them.
func TestTracedMessageLeavesWithoutItsFields(t *testing.T) {
	w, _, _ := newWorker(t)
	mb, rl := &recordingMailboxes{}, &openingRelay{}
	w.Mailboxes, w.Relay = mb, rl

	m, _ := tracedMessage(t, "a@local.test")
	if res := w.Deliver(context.Background(), m); res[0].Err != nil {
		t.Fatalf("local: %v", res[0].Err)
	}
	if len(mb.got) != 1 || mb.got[0].TraceLen != m.Trace.Len || mb.got[0].TraceTo != "a@local.test" {
		t.Errorf("mailbox got %+v", mb.got)
	}

	m, body := tracedMessage(t, "a@far.test")
	if res := w.Deliver(context.Background(), m); res[0].Err != nil {
		t.Fatalf("relay: %v", res[0].Err)
	}
	if len(rl.sent) != 1 || rl.sent[0] != body {
		t.Errorf("relayed %q, want %q", rl.sent, body)
	}

	m, _ = tracedMessage(t, "ghost@local.test")
	res := w.Deliver(context.Background(), m)
	if res[0].Err == nil || !res[0].Permanent {
		t.Fatalf("removed account: %+v", res[0])
	}
	m.DSN.Ret = "FULL"
	var out strings.Builder
	if err := w.WriteBounce(&out, m, []queue.Failure{res[0].Failure}); err != nil {
		t.Fatal(err)
	}
	if b := out.String(); !strings.Contains(b, "Message-ID: <m1@test>") || strings.Contains(b, "Delivered-To") ||
		strings.Contains(b, "Return-Path: <s@far.test>") {
		t.Errorf("bounce carries the trace fields or lacks the original:\n%s", b)
	}
}
