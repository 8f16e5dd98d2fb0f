package relay

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
)

// TestResultLinesWithoutAConnection: a mail exchanger that refuses the
// connection gives relay deferred (no mx_addr, no remote_reply, the error),
// and relay bounced on the queue's final attempt.
func TestResultLinesWithoutAConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	for _, final := range []bool{false, true} {
		rl, logs := newRelay(t, &Resolver{P: map[string]string{"b.test": addr}})
		j := job("m8", "b.test", opener(new(atomic.Int32)), "x@b.test")
		j.Attempt, j.Final = 2, final
		rl.Deliver(context.Background(), j)
		want, other := "relay deferred", "relay bounced"
		if final {
			want, other = other, want
		}
		lines := logs.FilterMessage(want).All()
		if len(lines) != 1 || logs.FilterMessage(other).Len() != 0 || logs.FilterMessage("relay delivered").Len() != 0 {
			t.Fatalf("final %v: %d %q lines, want 1 and no other result: %v", final, len(lines), want, logs.All())
		}
		m := lines[0].ContextMap()
		if _, ok := m["mx_addr"]; ok {
			t.Errorf("final %v: mx_addr without a connection: %v", final, m)
		}
		if _, ok := m["remote_reply"]; ok {
			t.Errorf("final %v: remote_reply without a reply: %v", final, m)
		}
		if m["error"] == nil || m["enhanced"] != "4.4.1" || m["attempt"] != int64(2) || m["rcpt"] != "x@b.test" {
			t.Errorf("final %v: fields %v", final, m)
		}
	}
}
