package delivery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/delivery/relay"
	"gomta/queue"
)

// messageWith is a queued message whose body is given.
func messageWith(t *testing.T, body string, rcpts ...string) *queue.Message {
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, []byte(body), 0o444); err != nil {
		t.Fatal(err)
	}
	return &queue.Message{ID: "M1", From: "s@local.test", Rcpts: rcpts, Received: time.Now(), Attempt: 1,
		BodyPath: p, Size: int64(len(body))}
}

func receivedFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Received: from hop%d by hop%d with ESMTP id %d;\r\n\tSun, 6 Dec 2026 02:00:00 +0000\r\n", i, i+1, i)
	}
	return b.String()
}

func TestLoopingMessageIsNotRelayed(t *testing.T) {
	w, mb, rl := newWorker(t)
	body := receivedFields(MaxReceived+1) + "Subject: loop\r\n\r\nReceived: in the body does not count\r\n"
	res := byRcpt(w.Deliver(context.Background(), messageWith(t, body, "x@far.test", "a@local.test")))
	r := res["x@far.test"]
	if r.Err == nil || !r.Permanent || r.Failure.Code != 554 || r.Failure.Enhanced != "5.4.6" {
		t.Fatalf("looping message to a remote recipient: %+v, want a permanent 554 5.4.6", r)
	}
	if len(rl.calls) != 0 {
		t.Fatalf("a looping message was relayed: %v", rl.calls)
	}
	if res["a@local.test"].Err != nil || len(mb.got) != 1 {
		t.Fatalf("local delivery ends a loop and goes on: %+v %v", res["a@local.test"], mb.got)
	}
}

func TestHundredReceivedStillRelayed(t *testing.T) {
	w, _, rl := newWorker(t)
	body := receivedFields(MaxReceived) + "Subject: long route\r\n\r\n" + receivedFields(50)
	res := byRcpt(w.Deliver(context.Background(), messageWith(t, body, "x@far.test")))
	if res["x@far.test"].Err != nil || len(rl.calls["far.test"]) != 1 {
		t.Fatalf("100 Received: fields are allowed (RFC 5321 §6.3): %+v %v", res["x@far.test"], rl.calls)
	}
}

// slowRelay holds every call until released, counting how many run at once.
type slowRelay struct {
	cur, peak atomic.Int32
	calls     atomic.Int32
	gate      chan struct{}
}

func (s *slowRelay) Deliver(ctx context.Context, j relay.Job) relay.Outcome {
	n := s.cur.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	s.calls.Add(1)
	<-s.gate
	s.cur.Add(-1)
	return relay.Outcome{Errs: make([]error, len(j.Rcpts))}
}

func TestRelayConcurrencyIsBounded(t *testing.T) {
	sr := &slowRelay{gate: make(chan struct{})}
	w := &Worker{
		Host: "mx.local.test", Local: func(string) bool { return false },
		Account: func(string) (string, bool) { return "", false }, Relay: sr, MaxRelay: 3,
		Logger: zaptest.NewLogger(t),
	}
	var rcpts []string
	for i := range 12 {
		rcpts = append(rcpts, fmt.Sprintf("u@d%d.test", i))
	}
	var wg sync.WaitGroup
	var res []queue.Result
	wg.Add(1)
	go func() { defer wg.Done(); res = w.Deliver(context.Background(), messageWith(t, "\r\n", rcpts...)) }()
	// Let the calls through one at a time: each release lets one more start,
	// and no more than MaxRelay are ever in progress.
	for range 12 {
		select {
		case sr.gate <- struct{}{}:
		case <-time.After(30 * time.Second):
			t.Fatal("relay calls stopped coming")
		}
	}
	wg.Wait()
	if got := sr.peak.Load(); got > 3 {
		t.Fatalf("%d relay transactions at once, MaxRelay is 3", got)
	}
	if sr.calls.Load() != 12 || len(res) != 12 {
		t.Fatalf("%d calls, %d results; want 12 each", sr.calls.Load(), len(res))
	}
}
