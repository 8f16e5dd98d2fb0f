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

	"gomta/delivery/mailbox"
	"gomta/delivery/relay"
	"gomta/queue"
	"gomta/session/reply"
)

type fakeMailboxes struct {
	mu   sync.Mutex
	got  []string
	fail error
}

func (f *fakeMailboxes) Deliver(_ context.Context, d mailbox.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, d.User)
	return nil
}

// fakeRelay answers per recipient from a table (missing = 250).
type fakeRelay struct {
	mu      sync.Mutex
	answers map[string]error
	calls   map[string][]string // domain → rcpts of the one call
}

func (f *fakeRelay) Deliver(_ context.Context, j relay.Job) relay.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string][]string{}
	}
	if _, dup := f.calls[j.Domain]; dup {
		panic("one relay call per domain expected")
	}
	f.calls[j.Domain] = slices.Clone(j.Rcpts)
	out := relay.Outcome{MX: "mx." + j.Domain}
	for _, r := range j.Rcpts {
		out.Errs = append(out.Errs, f.answers[r])
	}
	return out
}

func newWorker(t *testing.T) (*Worker, *fakeMailboxes, *fakeRelay) {
	mb, rl := &fakeMailboxes{}, &fakeRelay{answers: map[string]error{}}
	accounts := map[string]string{"a@local.test": "a@local.test", "b@local.test": "b@local.test"}
	return &Worker{
		Host:      "mx.local.test",
		Local:     func(d string) bool { return d == "local.test" },
		Account:   func(a string) (string, bool) { v, ok := accounts[strings.ToLower(a)]; return v, ok },
		Mailboxes: mb, Relay: rl, Logger: zaptest.NewLogger(t),
	}, mb, rl
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

func byRcpt(rs []queue.Result) map[string]queue.Result {
	out := map[string]queue.Result{}
	for _, r := range rs {
		out[r.Rcpt] = r
	}
	return out
}

var (
	reply550 = &reply.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
	reply451 = &reply.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
)

func TestSplitsByDomainOnceAndDeliversLocally(t *testing.T) {
	w, mb, rl := newWorker(t)
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
}

func TestPermanentFailureReportedForTheBounce(t *testing.T) {
	w, _, rl := newWorker(t)
	rl.answers["x@far.test"] = reply550
	rl.answers["y@far.test"] = reply550
	m := message(t, "s@local.test", "x@far.test", "y@far.test", "ghost@local.test", "a@local.test")
	res := byRcpt(w.Deliver(context.Background(), m))
	var failed []queue.Failure
	for _, r := range []string{"x@far.test", "y@far.test", "ghost@local.test"} {
		if res[r].Err == nil || !res[r].Permanent {
			t.Errorf("%s: %+v, want a permanent failure", r, res[r])
		}
		failed = append(failed, res[r].Failure)
	}
	if res["a@local.test"].Err != nil {
		t.Errorf("a@local.test: %v", res["a@local.test"].Err)
	}
	if f := res["x@far.test"].Failure; f.Code != 550 || f.Enhanced != "5.1.1" || f.Remote != "mx.far.test" {
		t.Errorf("failure of x@far.test: %+v", f)
	}
	var out strings.Builder
	if err := w.WriteBounce(&out, m, failed); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(out.String()))
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

func TestTemporaryFailureKeepsTheReply(t *testing.T) {
	w, _, rl := newWorker(t)
	rl.answers["x@far.test"] = reply451
	m := message(t, "s@local.test", "x@far.test")
	r := byRcpt(w.Deliver(context.Background(), m))["x@far.test"]
	if !errors.Is(r.Err, reply451) || r.Permanent || r.Failure.Enhanced != "4.3.0" {
		t.Fatalf("4xx: %+v, want a temporary failure with the reply kept", r)
	}
}

func TestLocalDiskErrorIsTemporary(t *testing.T) {
	w, mb, _ := newWorker(t)
	mb.fail = errors.New("no space left on device")
	r := byRcpt(w.Deliver(context.Background(), message(t, "s@far.test", "a@local.test")))["a@local.test"]
	if r.Err == nil || r.Permanent {
		t.Fatalf("a mailbox write error must be retried, not bounced: %+v", r)
	}
}

func TestRelayPanicIsTemporary(t *testing.T) {
	w, _, rl := newWorker(t)
	rl.calls = map[string][]string{"far.test": nil} // makes the fake panic
	r := byRcpt(w.Deliver(context.Background(), message(t, "s@local.test", "x@far.test")))["x@far.test"]
	if r.Err == nil || r.Permanent {
		t.Fatalf("a relay panic must be a temporary failure: %+v", r)
	}
}
