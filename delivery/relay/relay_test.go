package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

const body = "From: a@a.test\r\nSubject: secret-subject\r\n\r\nsecret-body-text\r\n"

func opener(n *atomic.Int32) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		n.Add(1)
		return nopSeekCloser{strings.NewReader(body)}, nil
	}
}

func perRcpt(to string) string {
	switch {
	case strings.HasPrefix(to, "bad"):
		return "550 5.1.1 no such user"
	case strings.HasPrefix(to, "later"):
		return "450 4.2.1 mailbox busy"
	}
	return ""
}

// job is a relay transaction of message id from me@a.test.
func job(id, domain string, open func() (io.ReadCloser, error), rcpts ...string) Job {
	return Job{MsgID: id, Domain: domain, From: "me@a.test", Rcpts: rcpts, Open: open}
}

func newRelay(t *testing.T, r *Resolver) (*Relay, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return New(r, Options{LocalName: "relay.test", Timeout: 30 * time.Second, Logger: zap.New(core)}), logs
}

func TestSendPerRecipient(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}, Rcpt: perRcpt})
	res := NewResolver(map[string]string{"B.Test.": "MX.B.Test."}, map[string]string{"mx.b.test.": srv.Port()}, false)
	rl, logs := newRelay(t, res)
	var opens atomic.Int32
	rcpts := []string{"ann@b.test", "bad@b.test", "later@b.test"}
	j := job("m1", "b.test", opener(&opens), rcpts...)
	j.Attempt = 3
	errs := rl.Deliver(context.Background(), j).Errs
	if len(errs) != 3 {
		t.Fatalf("got %d results", len(errs))
	}
	if errs[0] != nil || reply.Temporary(errs[0]) {
		t.Fatalf("ann: %v", errs[0])
	}
	var r *reply.Reply
	if !errors.As(errs[1], &r) || !r.Permanent() || r.Code != 550 || reply.Temporary(errs[1]) {
		t.Fatalf("bad: %v", errs[1])
	}
	if !errors.As(errs[2], &r) || !r.Temporary() || r.Code != 450 || !reply.Temporary(errs[2]) {
		t.Fatalf("later: %v", errs[2])
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 1 || msgs[0].From != "me@a.test" || !strings.Contains(string(msgs[0].Raw), "secret-body-text") {
		t.Fatalf("messages %+v", msgs)
	}
	if srv.Conns() != 1 || opens.Load() != 1 {
		t.Fatalf("conns %d opens %d", srv.Conns(), opens.Load())
	}
	lines := srv.Lines()
	if lines[0] != "EHLO relay.test" || lines[len(lines)-1] != "QUIT" {
		t.Fatalf("lines %q", lines)
	}

	// Logs: one attempt, one line per rcpt with the vocabulary; never the body.
	if n := logs.FilterMessage("relay attempt").Len(); n != 1 {
		t.Fatalf("%d attempt lines", n)
	}
	delivered := logs.FilterMessage("relay delivered").All()
	deferred := logs.FilterMessage("relay deferred").All()
	bounced := logs.FilterMessage("relay bounced").All()
	if len(delivered) != 1 || len(deferred) != 1 || len(bounced) != 1 {
		t.Fatalf("delivered %d, deferred %d, bounced %d lines, want 1 each", len(delivered), len(deferred), len(bounced))
	}
	if bounced[0].Level != zapcore.WarnLevel || delivered[0].Level != zapcore.InfoLevel || deferred[0].Level != zapcore.InfoLevel {
		t.Errorf("levels: delivered %v, deferred %v, bounced %v", delivered[0].Level, deferred[0].Level, bounced[0].Level)
	}
	m := delivered[0].ContextMap()
	if m["msg_id"] != "m1" || m["domain"] != "b.test" || m["mx"] != "mx.b.test" || m["rcpt"] != "ann@b.test" ||
		m["mx_addr"] != srv.Addr() || m["remote_reply"] != "250 2.0.0 queued" || m["smtp_code"] != int64(250) ||
		m["enhanced"] != "2.0.0" || m["attempt"] != int64(3) || m["duration_ms"] == nil || m["error"] != nil {
		t.Errorf("delivered fields %v", m)
	}
	m = bounced[0].ContextMap()
	if m["msg_id"] != "m1" || m["domain"] != "b.test" || m["mx"] != "mx.b.test" || m["rcpt"] != "bad@b.test" ||
		m["mx_addr"] != srv.Addr() || m["remote_reply"] != "550 5.1.1 no such user" || m["attempt"] != int64(3) ||
		m["smtp_code"] != int64(550) || m["enhanced"] != "5.1.1" || m["error"] == nil || m["duration_ms"] == nil {
		t.Errorf("bounced fields %v", m)
	}
	if m := deferred[0].ContextMap(); m["rcpt"] != "later@b.test" || m["remote_reply"] != "450 4.2.1 mailbox busy" || m["smtp_code"] != int64(450) {
		t.Errorf("deferred fields %v", m)
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, "secret-body") || strings.Contains(s, "secret-subject")) {
				t.Fatalf("body logged in %s: %q", k, s)
			}
		}
	}
}

func TestConnectionRefusedIsTemporary(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	rl, logs := newRelay(t, &Resolver{P: map[string]string{"b.test": addr}})
	var opens atomic.Int32
	errs := rl.Deliver(context.Background(), job("m2", "b.test", opener(&opens), "x@b.test", "y@b.test")).Errs
	for i, e := range errs {
		if e == nil || !reply.Temporary(e) {
			t.Fatalf("rcpt %d: %v, want a temporary error", i, e)
		}
	}
	if opens.Load() != 0 {
		t.Fatal("body opened without a connection")
	}
	// The bounce text reads as a person expects, with RFC 3463's X.4.1.
	f := Failure("x@b.test", "", errs[0])
	if want := "connect to b.test[" + addr[:strings.LastIndexByte(addr, ':')] + "]" + addr[strings.LastIndexByte(addr, ':'):] +
		": Connection refused"; f.Text != want || f.Enhanced != "4.4.1" || f.Code != 0 {
		t.Fatalf("failure %+v, want text %q and 4.4.1", f, want)
	}
	if logs.FilterMessage("relay attempt").FilterFieldKey("error").Len() != 1 {
		t.Fatalf("attempt not logged with its error: %v", logs.All())
	}
}

func TestUnknownDomainIsPermanent(t *testing.T) {
	t.Parallel()
	rl, _ := newRelay(t, &Resolver{})
	errs := rl.Deliver(context.Background(), job("m3", "nowhere.test", opener(new(atomic.Int32)), "x@nowhere.test")).Errs
	if errs[0] == nil || reply.Temporary(errs[0]) {
		t.Fatalf("got %v, want a permanent error", errs[0])
	}
	f := Failure("x@nowhere.test", "", errs[0])
	if f.Code != 0 || f.Enhanced != "5.1.2" || f.Text == "" {
		t.Fatalf("failure %+v", f)
	}
}

// TestTargetsInOrder: a refused connection and a 421 greeting are skipped,
// the third target delivers; the body is opened once per target reached.
func TestTargetsInOrder(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	busy := smtpclienttest.Start(t, smtpclienttest.Config{Greeting: "421 4.3.2 busy"})
	closing := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}, Mail: func(string) string { return "421 4.3.2 going down" }})
	good := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	rl, logs := newRelay(t, &Resolver{})
	var opens atomic.Int32
	out := Outcome{Errs: make([]error, 2)}
	targets := []Target{{"dead.test", dead}, {"busy.test", busy.Addr()}, {"closing.test", closing.Addr()}, {"good.test", good.Addr()}}
	j := job("m8", "b.test", opener(&opens), "a@b.test", "c@b.test")
	rl.tryTargets(context.Background(), rl.log, j, targets, &out)
	if out.Errs[0] != nil || out.Errs[1] != nil || out.MX != "good.test" {
		t.Fatalf("outcome %+v", out)
	}
	if len(good.Messages()) != 1 || len(closing.Messages()) != 0 {
		t.Fatal("message not delivered exactly once")
	}
	if opens.Load() != 2 { // closing.test and good.test got as far as the body
		t.Fatalf("opens %d", opens.Load())
	}
	if n := logs.FilterMessage("relay attempt").Len(); n != 4 {
		t.Fatalf("%d attempts logged", n)
	}
}

func TestDropMidTransactionIsTemporary(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"DATA", "BODY"} {
		srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}, Drop: func(s string) bool { return s == step }})
		rl, _ := newRelay(t, &Resolver{P: map[string]string{"b.test": srv.Addr()}})
		errs := rl.Deliver(context.Background(), job("m4", "b.test", opener(new(atomic.Int32)), "a@b.test", "bad@b.test")).Errs
		for i, e := range errs {
			if e == nil || !reply.Temporary(e) {
				t.Fatalf("%s: rcpt %d: %v, want temporary", step, i, e)
			}
		}
		f := Failure("a@b.test", "b.test", errs[0])
		if !strings.HasPrefix(f.Text, "lost connection with b.test[127.0.0.1]:") || f.Enhanced != "4.4.2" {
			t.Fatalf("%s: failure %+v, want a lost connection with 4.4.2", step, f)
		}
	}
}

func TestWholeTransactionRefused(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{},
		Body: func([]byte) string { return "554 5.7.1 spam" }})
	rl, _ := newRelay(t, &Resolver{P: map[string]string{"b.test": srv.Addr()}})
	out := rl.Deliver(context.Background(), job("m5", "b.test", opener(new(atomic.Int32)), "a@b.test", "c@b.test"))
	for _, e := range out.Errs {
		if e == nil || reply.Temporary(e) {
			t.Fatalf("got %v, want permanent", e)
		}
	}
	f := Failure("a@b.test", out.MX, out.Errs[0])
	if f.Code != 554 || f.Enhanced != "5.7.1" || f.Text != "spam" || f.RemoteMTA != "b.test" {
		t.Fatalf("failure %+v", f)
	}
}

func TestCanceledContextIsTemporary(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	rl, _ := newRelay(t, &Resolver{P: map[string]string{"b.test": srv.Addr()}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := rl.Deliver(ctx, job("m6", "b.test", opener(new(atomic.Int32)), "a@b.test")).Errs
	if errs[0] == nil || !reply.Temporary(errs[0]) || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("got %v", errs[0])
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("delivered under a canceled context")
	}
}

func TestOpenFailureIsTemporary(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	rl, _ := newRelay(t, &Resolver{P: map[string]string{"b.test": srv.Addr()}})
	errs := rl.Deliver(context.Background(), job("m7", "b.test", func() (io.ReadCloser, error) { return nil, errors.New("spool gone") }, "a@b.test")).Errs
	if errs[0] == nil || !reply.Temporary(errs[0]) {
		t.Fatalf("got %v", errs[0])
	}
}

func TestTemporary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&reply.Reply{Code: 550, Enhanced: "5.1.1"}, false},
		{&reply.Reply{Code: 451}, true},
		{&ResolveError{Domain: "x", NotFound: true}, false},
		{&ResolveError{Domain: "x", Err: errors.New("SERVFAIL")}, true},
		{errors.New("connection reset"), true},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		if got := reply.Temporary(tt.err); got != tt.want {
			t.Errorf("reply.Temporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
