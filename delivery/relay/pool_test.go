package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/mta/mtatest"
	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// pooled is a relay to srv as the only mail exchanger of b.test, with a pool.
func pooled(t *testing.T, srv *smtpclienttest.Server, opt PoolOptions) (*Relay, *Pool) {
	t.Helper()
	res := NewResolver(map[string]string{"b.test.": "mx.b.test."}, map[string]string{"mx.b.test.": srv.Port()}, false)
	p := NewPool(opt)
	t.Cleanup(p.Close)
	return New(res, Options{LocalName: "relay.test", Timeout: 30 * time.Second, Logger: zap.NewNop(), Pool: p}), p
}

func count(lines []string, verb string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, verb) {
			n++
		}
	}
	return n
}

func mustDeliver(t *testing.T, rl *Relay, id string) Outcome {
	t.Helper()
	var opens atomic.Int32
	out := rl.Deliver(context.Background(), job(id, "b.test", opener(&opens), "ann@b.test"))
	if out.Errs[0] != nil {
		t.Fatalf("%s: %v", id, out.Errs[0])
	}
	return out
}

// TestPoolReusesConnection: messages one after another go over one
// connection with RSET between them, and a new connection is opened after
// MaxMessages.
func TestPoolReusesConnection(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	rl, _ := pooled(t, srv, PoolOptions{MaxMessages: 3, MaxIdle: time.Minute})
	for i := range 7 {
		out := mustDeliver(t, rl, "m"+string(rune('0'+i)))
		if out.MXAddr != srv.Addr() || out.Reply == nil || out.Reply.Code != 250 {
			t.Fatalf("outcome %+v", out)
		}
	}
	if got := len(srv.Messages()); got != 7 {
		t.Fatalf("%d messages", got)
	}
	// 7 messages, 3 per connection: 3 connections; RSET before each reuse.
	lines := srv.Lines()
	if srv.Conns() != 3 || count(lines, "EHLO") != 3 || count(lines, "RSET") != 4 || count(lines, "QUIT") != 2 {
		t.Fatalf("conns %d, lines %q", srv.Conns(), lines)
	}
}

// TestPoolIdleExpiry: an idle connection is closed (QUIT) after MaxIdle, and
// the next message dials again.
func TestPoolIdleExpiry(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	rl, _ := pooled(t, srv, PoolOptions{MaxIdle: 50 * time.Millisecond})
	mustDeliver(t, rl, "m1")
	mtatest.Eventually(t, "QUIT of the idle connection", func() bool { return count(srv.Lines(), "QUIT") == 1 })
	mustDeliver(t, rl, "m2")
	if srv.Conns() != 2 || count(srv.Lines(), "RSET") != 0 {
		t.Fatalf("conns %d, lines %q", srv.Conns(), srv.Lines())
	}
}

// TestPoolDeadConnectionReplaced: a cached connection that died (here, the
// server drops it on RSET) is replaced by a new one without failing the
// message.
func TestPoolDeadConnectionReplaced(t *testing.T) {
	t.Parallel()
	var drops atomic.Int32
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{},
		Drop: func(step string) bool { return step == "RSET" && drops.Add(1) == 1 }})
	rl, _ := pooled(t, srv, PoolOptions{MaxIdle: time.Minute})
	mustDeliver(t, rl, "m1")
	mustDeliver(t, rl, "m2")
	mustDeliver(t, rl, "m3")
	if srv.Conns() != 2 || len(srv.Messages()) != 3 || count(srv.Lines(), "RSET") != 2 {
		t.Fatalf("conns %d, %d messages, lines %q", srv.Conns(), len(srv.Messages()), srv.Lines())
	}
}

// TestPoolPerDestinationLimit: with PerDest 3, ten messages at once to a
// slow server are never more than 3 connections and transactions at once,
// and all are delivered.
func TestPoolPerDestinationLimit(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 10
	var mu sync.Mutex
	inBody, most := 0, 0
	release := make(chan struct{})
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}, Body: func([]byte) string {
		mu.Lock()
		inBody++
		most = max(most, inBody)
		mu.Unlock()
		<-release
		mu.Lock()
		inBody--
		mu.Unlock()
		return ""
	}})
	rl, _ := pooled(t, srv, PoolOptions{PerDest: limit, MaxIdle: time.Minute})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the server's sessions blocked
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var opens atomic.Int32
			errs[i] = rl.Deliver(context.Background(), job("m", "b.test", opener(&opens), "ann@b.test")).Errs[0]
		})
	}
	mtatest.Eventually(t, "the limit's transactions waiting at the server", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inBody == limit
	})
	unblock()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if most != limit || srv.Conns() > limit || len(srv.Messages()) != n {
		t.Fatalf("at most %d at once, %d connections, %d messages", most, srv.Conns(), len(srv.Messages()))
	}
}

// TestPoolBackoff: a destination that refuses (a 421 greeting) is dialled
// once for several messages while backed off, each deferred with the
// refusal; once the back-off ends, the next message dials again.
func TestPoolBackoff(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Greeting: "421 4.3.2 busy"})
	rl, p := pooled(t, srv, PoolOptions{Backoff: time.Hour})
	var opens atomic.Int32
	for i := range 5 {
		err := rl.Deliver(context.Background(), job("m", "b.test", opener(&opens), "ann@b.test")).Errs[0]
		var r *reply.Reply
		if !errors.As(err, &r) || r.Code != 421 || !reply.Temporary(err) {
			t.Fatalf("message %d: %v", i, err)
		}
		if i > 0 && !strings.Contains(err.Error(), "delivery temporarily suspended") {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if srv.Conns() != 1 || opens.Load() != 0 {
		t.Fatalf("conns %d, opens %d", srv.Conns(), opens.Load())
	}
	// The window ends (as if an hour had passed).
	p.mu.Lock()
	p.dests[srv.Addr()].until = time.Now()
	p.mu.Unlock()
	rl.Deliver(context.Background(), job("m", "b.test", opener(&opens), "ann@b.test"))
	if srv.Conns() != 2 {
		t.Fatalf("conns %d after the back-off", srv.Conns())
	}
}

// TestPoolCloseQuitsIdle: Close ends idle connections with QUIT, and a
// relay on a closed pool defers.
func TestPoolCloseQuitsIdle(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	rl, p := pooled(t, srv, PoolOptions{MaxIdle: time.Hour})
	mustDeliver(t, rl, "m1")
	p.Close()
	if count(srv.Lines(), "QUIT") != 1 {
		t.Fatalf("lines %q", srv.Lines())
	}
	var opens atomic.Int32
	err := rl.Deliver(context.Background(), job("m2", "b.test", opener(&opens), "ann@b.test")).Errs[0]
	if !errors.Is(err, errPoolClosed) || !reply.Temporary(err) {
		t.Fatalf("after Close: %v", err)
	}
}
