package delivery

import (
	"context"
	"testing"

	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
	"gomta/session/reply"
)

// Each recipient's result is counted by kind and by what the queue will do
// with it: delivered (with its latency), deferred, or bounced (permanent, or
// temporary on the final attempt).
func TestResultsCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	w, _, rl := newWorker(t)
	w.Metrics = m.Host("mx.local.test").Delivery
	rl.answers["later@remote.test"] = &reply.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
	rl.answers["gone@remote.test"] = &reply.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
	msg := message(t, "s@local.test", "a@local.test", "nobody@local.test", "ok@remote.test",
		"later@remote.test", "gone@remote.test")
	w.Deliver(context.Background(), msg)
	msg.Final = true
	msg.Rcpts = []string{"later@remote.test"}
	rl.calls = nil
	w.Deliver(context.Background(), msg)

	f := metricstest.Gather(t, m.Registry())
	for _, c := range []struct {
		kind, result string
		want         float64
	}{
		{"local", "delivered", 1}, {"local", "bounced", 1}, {"local", "deferred", 0},
		{"relay", "delivered", 1}, {"relay", "deferred", 1}, {"relay", "bounced", 2},
	} {
		got := f.Get(t, "gomta_deliveries_total", "host", "mx.local.test", "kind", c.kind, "result", c.result)
		if got != c.want {
			t.Errorf("deliveries %s %s = %v, want %v", c.kind, c.result, got, c.want)
		}
	}
	for _, kind := range []string{"local", "relay"} {
		if n := f.Get(t, "gomta_delivery_latency_seconds", "host", "mx.local.test", "kind", kind); n != 1 {
			t.Errorf("%s latencies observed %v, want 1", kind, n)
		}
	}
}
