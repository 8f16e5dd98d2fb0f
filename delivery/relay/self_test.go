package relay

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// TestSelfIsNeverDialled: a domain whose mail exchanger is this host itself
// fails at once with 554 5.4.6, and the host's listener gets no connection.
func TestSelfIsNeverDialled(t *testing.T) {
	t.Parallel()
	self := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	r := NewResolver(map[string]string{"loop.test": "mx.loop.test"}, map[string]string{"mx.loop.test": self.Addr()}, false)
	rl, logs := newRelay(t, r)
	rl.opt.Self = func(addr string) bool { return addr == self.Addr() }
	errs := rl.Deliver(context.Background(), job("m1", "loop.test", opener(new(atomic.Int32)), "x@loop.test")).Errs
	var rep *reply.Reply
	if !errors.As(errs[0], &rep) || rep.Code != 554 || rep.Enhanced != "5.4.6" || reply.Temporary(errs[0]) {
		t.Fatalf("got %v, want a permanent 554 5.4.6", errs[0])
	}
	if logs.FilterMessage("mail loops back to myself").Len() != 1 || logs.FilterMessage("relay attempt").Len() != 0 {
		t.Fatalf("logs: %v", logs.All())
	}
	if len(self.Messages()) != 0 {
		t.Fatal("the relay delivered to itself")
	}
}

// TestOnlyBetterTargetsThanSelf: mail exchangers listed after this host are
// never tried (RFC 5321 §5.1); the better ones are.
func TestOnlyBetterTargetsThanSelf(t *testing.T) {
	t.Parallel()
	rl, _ := newRelay(t, &Resolver{})
	rl.opt.Self = func(addr string) bool { return addr == "127.0.0.1:2" }
	got := rl.better([]Target{{"a", "127.0.0.1:1"}, {"me", "127.0.0.1:2"}, {"c", "127.0.0.1:3"}})
	if len(got) != 1 || got[0].Host != "a" {
		t.Fatalf("targets %v, want only a", got)
	}
	rl.opt.Self = nil
	if got := rl.better([]Target{{"a", "x:1"}, {"b", "x:2"}}); len(got) != 2 {
		t.Fatalf("without Self: %v", got)
	}
}

// TestSelfByNameIsClosedBeforeAnyTransaction: a target named by a host name
// is checked by the address its connection reached: when that is this host,
// no transaction is made and the recipients fail with 554 5.4.6.
func TestSelfByNameIsClosedBeforeAnyTransaction(t *testing.T) {
	t.Parallel()
	self := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	_, port, _ := strings.Cut(self.Addr(), ":")
	r := NewResolver(map[string]string{"loop.test": "mx.loop.test"}, map[string]string{"mx.loop.test": "localhost:" + port}, false)
	rl, _ := newRelay(t, r)
	rl.opt.Self = func(addr string) bool { return addr == self.Addr() } // the resolved address only
	errs := rl.Deliver(context.Background(), job("m1", "loop.test", opener(new(atomic.Int32)), "x@loop.test")).Errs
	var rep *reply.Reply
	if !errors.As(errs[0], &rep) || rep.Code != 554 || rep.Enhanced != "5.4.6" {
		t.Fatalf("got %v, want a permanent 554 5.4.6", errs[0])
	}
	if len(self.Messages()) != 0 {
		t.Fatal("the relay delivered to itself")
	}
}
