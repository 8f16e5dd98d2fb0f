package delivery

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/delivery/relay"
	"gomta/queue"
	"gomta/session/smtp"
)

type fakeMailboxes struct {
	mu   sync.Mutex
	got  []string
	fail error
}

func (f *fakeMailboxes) Deliver(_ context.Context, user, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, user)
	return nil
}

// fakeRelay answers per recipient from a table (missing = 250).
type fakeRelay struct {
	mu      sync.Mutex
	answers map[string]error
	calls   map[string][]string // domain → rcpts of the one call
}

func (f *fakeRelay) Deliver(_ context.Context, _, domain, _ string, rcpts []string, _ func() (io.ReadCloser, error)) relay.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string][]string{}
	}
	if _, dup := f.calls[domain]; dup {
		panic("one relay call per domain expected")
	}
	f.calls[domain] = slices.Clone(rcpts)
	out := relay.Outcome{MX: "mx." + domain}
	for _, r := range rcpts {
		out.Errs = append(out.Errs, f.answers[r])
	}
	return out
}

type bounce struct {
	from  string
	rcpts []string
	body  string
}

type fakeSubmitter struct {
	mu   sync.Mutex
	got  []bounce
	fail error
}

func (f *fakeSubmitter) Submit(_ context.Context, from string, rcpts []string, body io.Reader) (string, error) {
	if f.fail != nil {
		return "", f.fail
	}
	b, _ := io.ReadAll(body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, bounce{from, rcpts, string(b)})
	return "BOUNCE1", nil
}

func newWorker(t *testing.T) (*Worker, *fakeMailboxes, *fakeRelay, *fakeSubmitter) {
	mb, rl, sub := &fakeMailboxes{}, &fakeRelay{answers: map[string]error{}}, &fakeSubmitter{}
	accounts := map[string]string{"a@local.test": "a@local.test", "b@local.test": "b@local.test"}
	return &Worker{
		Host:      "mx.local.test",
		Local:     func(d string) bool { return d == "local.test" },
		Account:   func(a string) (string, bool) { v, ok := accounts[strings.ToLower(a)]; return v, ok },
		Mailboxes: mb, Relay: rl, Bounces: sub, Logger: zaptest.NewLogger(t),
	}, mb, rl, sub
}

func message(t *testing.T, from string, rcpts ...string) *queue.Message {
	p := filepath.Join(t.TempDir(), "body")
	os.WriteFile(p, []byte("Received: by mx\r\nSubject: hello\r\nMessage-ID: <m1@test>\r\n\r\nbody\r\n"), 0o444)
	return &queue.Message{ID: "M1", From: from, Rcpts: rcpts, Received: time.Now(), Attempt: 1, BodyPath: p, Size: 60}
}

func results(rs []queue.Result) map[string]error {
	out := map[string]error{}
	for _, r := range rs {
		out[r.Rcpt] = r.Err
	}
	return out
}

var (
	reply550 = &smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
	reply451 = &smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
)

func TestSplitsByDomainOnceAndDeliversLocally(t *testing.T) {
	w, mb, rl, sub := newWorker(t)
	m := message(t, "s@local.test", "A@local.test", "x@far.test", "b@local.test", "y@Far.Test", "z@other.test")
	res := results(w.Deliver(context.Background(), m))
	if len(res) != 5 {
		t.Fatalf("want one result per recipient, got %v", res)
	}
	for r, err := range res {
		if err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if !slices.Equal(mb.got, []string{"a@local.test", "b@local.test"}) {
		t.Errorf("local deliveries to canonical accounts: %v", mb.got)
	}
	if !slices.Equal(rl.calls["far.test"], []string{"x@far.test", "y@Far.Test"}) || len(rl.calls) != 2 {
		t.Errorf("relay calls: %v", rl.calls)
	}
	if len(sub.got) != 0 {
		t.Errorf("no failure, yet a bounce: %v", sub.got)
	}
}

func TestPermanentFailureBouncesOnce(t *testing.T) {
	w, _, rl, sub := newWorker(t)
	rl.answers["x@far.test"] = reply550
	rl.answers["y@far.test"] = reply550
	m := message(t, "s@local.test", "x@far.test", "y@far.test", "ghost@local.test", "a@local.test")
	res := results(w.Deliver(context.Background(), m))
	for r, err := range res {
		if err != nil {
			t.Errorf("%s: %v; a bounced recipient is done", r, err)
		}
	}
	if len(sub.got) != 1 {
		t.Fatalf("want one bounce for the three failures, got %d", len(sub.got))
	}
	b := sub.got[0]
	if b.from != "" || !slices.Equal(b.rcpts, []string{"s@local.test"}) {
		t.Errorf("bounce envelope: from %q to %v, want <> to the sender", b.from, b.rcpts)
	}
	msg, err := mail.ReadMessage(strings.NewReader(b.body))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("bounce Content-Type %q", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var status string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if p.Header.Get("Content-Type") == "message/delivery-status" {
			b, _ := io.ReadAll(p)
			status = string(b)
		}
	}
	for _, want := range []string{"x@far.test", "y@far.test", "ghost@local.test", "Remote-MTA: dns; mx.far.test", "550 5.1.1", "Action: failed"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "a@local.test") {
		t.Error("a delivered recipient is named in the bounce")
	}
}

func TestTemporaryFailureRetriedThenBouncedOnFinal(t *testing.T) {
	w, _, rl, sub := newWorker(t)
	rl.answers["x@far.test"] = reply451
	m := message(t, "s@local.test", "x@far.test")
	if res := results(w.Deliver(context.Background(), m)); !errors.Is(res["x@far.test"], reply451) {
		t.Fatalf("4xx: %v, want the reply kept for a retry", res)
	}
	if len(sub.got) != 0 {
		t.Fatal("a temporary failure bounced")
	}
	rl.calls = nil
	m.Final, m.Attempt = true, 9
	if res := results(w.Deliver(context.Background(), m)); res["x@far.test"] != nil {
		t.Fatalf("final attempt: %v, want done (bounced)", res)
	}
	if len(sub.got) != 1 || !strings.Contains(sub.got[0].body, "4.3.0") {
		t.Fatalf("final attempt must bounce with the last reply: %+v", sub.got)
	}
}

func TestLocalDiskErrorIsTemporary(t *testing.T) {
	w, mb, _, sub := newWorker(t)
	mb.fail = errors.New("no space left on device")
	res := results(w.Deliver(context.Background(), message(t, "s@far.test", "a@local.test")))
	if res["a@local.test"] == nil || !relay.Temporary(res["a@local.test"]) || len(sub.got) != 0 {
		t.Fatalf("a mailbox write error must be retried, not bounced: %v %v", res, sub.got)
	}
}

func TestNullSenderNeverBounced(t *testing.T) {
	w, _, rl, sub := newWorker(t)
	rl.answers["x@far.test"] = reply550
	res := results(w.Deliver(context.Background(), message(t, "", "x@far.test")))
	if res["x@far.test"] != nil || len(sub.got) != 0 {
		t.Fatalf("a failed bounce is dropped (logged), never bounced: %v %v", res, sub.got)
	}
}

func TestBounceNotQueuedKeepsRecipient(t *testing.T) {
	w, _, rl, sub := newWorker(t)
	rl.answers["x@far.test"] = reply550
	sub.fail = errors.New("queue: full")
	res := results(w.Deliver(context.Background(), message(t, "s@local.test", "x@far.test", "y@far.test")))
	if res["x@far.test"] == nil || res["y@far.test"] != nil {
		t.Fatalf("when the bounce cannot be queued the failed recipient stays (retried): %v", res)
	}
}

func TestRelayPanicIsTemporary(t *testing.T) {
	w, _, rl, _ := newWorker(t)
	rl.calls = map[string][]string{"far.test": nil} // makes the fake panic
	res := results(w.Deliver(context.Background(), message(t, "s@local.test", "x@far.test")))
	if res["x@far.test"] == nil || !relay.Temporary(res["x@far.test"]) {
		t.Fatalf("a relay panic must be a temporary failure: %v", res)
	}
}
