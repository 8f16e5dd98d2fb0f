package jsq

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/queue"
	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
)

// The gauges follow a message from active (attempt in progress) to
// deferred and held, on a node that delivers, and show an empty queue once
// Run stops, as the local queue's do (queue/gauges_test.go).
func TestGaugesFollowStates(t *testing.T) {
	s := server(t)
	m := metrics.New()
	q := openQ(t, s.JS, "n1", func(o *Options) {
		o.Retry = slices.Repeat([]time.Duration{time.Hour}, 10)
		o.Metrics = m.Host("test").Queue
	})
	get := func(name string, labels ...string) float64 {
		return metricstest.Gather(t, m.Registry()).Get(t, name, append([]string{"host", "test"}, labels...)...)
	}
	state := func(st string) float64 { return get("gomta_queue_messages", "state", st) }
	proceed := make(chan struct{})
	h := newHandler(func(m *queue.Message) []queue.Result {
		<-proceed
		return results(m, errTemp, false)
	})
	id := commit(t, q, "a@example.org", []string{"b@example.org"}, []byte("Subject: g\r\n\r\n"))
	stop := run(t, q, h)
	var once sync.Once
	unblock := func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(unblock) // before run's stop (cleanups run last first): a failed test must not hang Run
	h.next(t)          // the attempt is in progress, waiting for proceed
	mtatest.Eventually(t, "one active message", func() bool { return state("active") == 1 })
	unblock()
	mtatest.Eventually(t, "one deferred message", func() bool { return state("deferred") == 1 && state("active") == 0 })
	if age := get("gomta_queue_oldest_message_age_seconds"); age <= 0 || age > 3600 {
		t.Errorf("oldest message age %v s, want above 0 and under the test's length", age)
	}
	mustDo(t, "hold", "held")(q.Hold(context.Background(), []string{id}))
	mtatest.Eventually(t, "one held message", func() bool { return state("held") == 1 && state("deferred") == 0 })
	stop()
	if hd, age := state("held"), get("gomta_queue_oldest_message_age_seconds"); hd != 0 || age != 0 {
		t.Errorf("after Run stopped: held %v, oldest age %v; want 0 and 0", hd, age)
	}
}
