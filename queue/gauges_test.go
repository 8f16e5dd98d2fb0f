package queue

import (
	"testing"
	"time"

	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"

	"gomta/mta/mtatest"
)

// queueMetric reads one sample of the test host's queue metrics.
func queueMetric(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	return metricstest.Gather(t, m.Registry()).Get(t, name, append([]string{"host", "test"}, labels...)...)
}

// The gauges follow the messages from active (attempt in progress) to
// deferred (waiting to be retried), and show an empty queue once Run stops.
func TestGaugesFollowStates(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	q := open(t, t.TempDir(), func(o *Options) {
		o.Retry = []time.Duration{time.Hour}
		o.Metrics = m.Host("test").Queue
	})
	proceed := make(chan struct{})
	h, ch := recorder(t, func(msg *Message) []Result {
		<-proceed
		return allTemp(msg)
	})
	commit(t, q, "s@x.test", []string{"a@x.test"}, "x\r\n")
	stop := run(t, q, h)
	next(t, ch) // the attempt is in progress, held by the handler
	state := func(st string) float64 { return queueMetric(t, m, "gomta_queue_messages", "state", st) }
	mtatest.Eventually(t, "one active message", func() bool { return state("active") == 1 })
	close(proceed)
	mtatest.Eventually(t, "one deferred message", func() bool { return state("deferred") == 1 && state("active") == 0 })
	if age := queueMetric(t, m, "gomta_queue_oldest_message_age_seconds"); age <= 0 || age > 3600 {
		t.Errorf("oldest message age %v s, want above 0 and under the test's length", age)
	}
	if n := queueMetric(t, m, "gomta_spool_commit_batch_size"); n != 1 {
		t.Errorf("group commits observed %v, want 1", n)
	}
	if n := queueMetric(t, m, "gomta_spool_fsync_seconds"); n != 1 {
		t.Errorf("fsync durations observed %v, want 1", n)
	}
	stop()
	if d, age := state("deferred"), queueMetric(t, m, "gomta_queue_oldest_message_age_seconds"); d != 0 || age != 0 {
		t.Errorf("after Run stopped: deferred %v, oldest age %v; want 0 and 0", d, age)
	}
}

// A bounce is counted once it is durable, and a delivered message leaves
// the gauges.
func TestBounceCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	q := open(t, t.TempDir(), func(o *Options) {
		o.Retry = nil // the first attempt is final
		o.Metrics = m.Host("test").Queue
	})
	h, _ := recorder(t, func(msg *Message) []Result {
		if msg.From == "" {
			return allDone(msg) // the bounce
		}
		return allTemp(msg)
	})
	commit(t, q, "s@x.test", []string{"a@x.test"}, "x\r\n")
	run(t, q, h)
	mtatest.Eventually(t, "message and bounce done", func() bool { return q.Len() == 0 })
	if n := queueMetric(t, m, "gomta_bounces_total"); n != 1 {
		t.Errorf("bounces_total %v, want 1", n)
	}
	mtatest.Eventually(t, "an empty queue in the gauges", func() bool {
		return queueMetric(t, m, "gomta_queue_messages", "state", "active") == 0 &&
			queueMetric(t, m, "gomta_queue_oldest_message_age_seconds") == 0
	})
}

// The oldest-message heap keeps no more than a bounded number of items for
// messages that left, however many pass through.
func TestOldestHeapBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	g := newGauges(m.Host("h").Queue)
	entries := map[string]*entry{}
	stuck := &entry{env: &envelope{ID: "stuck", Received: time.Now().Add(-time.Hour)}}
	entries["stuck"] = stuck
	g.enter(stuck)
	for i := range 1000 {
		e := &entry{env: &envelope{ID: string(rune('a'+i%26)) + time.Duration(i).String(), Received: time.Now()}}
		entries[e.env.ID] = e
		g.enter(e)
		delete(entries, e.env.ID)
		g.leave(stateOf(e))
		g.publish(entries)
	}
	if len(g.oldest) > 2*len(entries)+64+1 {
		t.Errorf("heap holds %d items for %d messages", len(g.oldest), len(entries))
	}
	if g.counts[metrics.StateActive] != 1 {
		t.Errorf("active count %d, want 1", g.counts[metrics.StateActive])
	}
	if age := metricstest.Gather(t, m.Registry()).Get(t, "gomta_queue_oldest_message_age_seconds", "host", "h"); age < 3600 {
		t.Errorf("oldest age %v s, want the stuck message's hour", age)
	}
}
