package metrics_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
)

func TestHandlesCountPerHost(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	a, b := m.Host("a.example"), m.Host("b.example")
	if m.Host("a.example") != a {
		t.Fatal("a second Host call for a name made new handles")
	}
	a.SMTP.Opened()
	a.SMTP.Opened()
	a.SMTP.Closed()
	a.SMTP.Reply(220)
	a.SMTP.Reply(250)
	a.SMTP.Reply(550)
	a.SMTP.Reply(99) // not a reply code: not counted
	a.SMTP.Accepted(1000)
	a.SMTP.TLS()
	a.POP3.AuthFailed()
	a.POP3.Accepted(5) // POP3 accepts no message: not counted
	b.Queue.BounceQueued()
	b.Queue.Committed(3, 2*time.Millisecond)
	b.Queue.SetMessages(metrics.StateDeferred, 4)
	b.Queue.SetOldest(time.Now().Add(-time.Hour))
	a.Delivery.Result(metrics.KindLocal, metrics.ResultDelivered, 20*time.Millisecond)
	a.Delivery.Result(metrics.KindRelay, metrics.ResultBounced, time.Second)

	f := metricstest.Gather(t, m.Registry())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gomta_sessions_total", []string{"host", "a.example", "proto", "smtp"}, 2},
		{"gomta_sessions_open", []string{"host", "a.example", "proto", "smtp"}, 1},
		{"gomta_sessions_total", []string{"host", "b.example", "proto", "smtp"}, 0},
		{"gomta_smtp_replies_total", []string{"host", "a.example", "class", "2xx"}, 2},
		{"gomta_smtp_replies_total", []string{"host", "a.example", "class", "5xx"}, 1},
		{"gomta_smtp_replies_total", []string{"host", "a.example", "class", "4xx"}, 0},
		{"gomta_messages_accepted_total", []string{"host", "a.example"}, 1},
		{"gomta_messages_accepted_bytes_total", []string{"host", "a.example"}, 1000},
		{"gomta_tls_sessions_total", []string{"host", "a.example", "proto", "smtp"}, 1},
		{"gomta_auth_failures_total", []string{"host", "a.example", "proto", "pop3"}, 1},
		{"gomta_bounces_total", []string{"host", "b.example"}, 1},
		{"gomta_spool_commit_batch_size", []string{"host", "b.example"}, 1},
		{"gomta_spool_fsync_seconds", []string{"host", "b.example"}, 1},
		{"gomta_queue_messages", []string{"host", "b.example", "state", "deferred"}, 4},
		{"gomta_queue_messages", []string{"host", "b.example", "state", "active"}, 0},
		{"gomta_deliveries_total", []string{"host", "a.example", "kind", "local", "result", "delivered"}, 1},
		{"gomta_deliveries_total", []string{"host", "a.example", "kind", "relay", "result", "bounced"}, 1},
		{"gomta_delivery_latency_seconds", []string{"host", "a.example", "kind", "local"}, 1},
		{"gomta_delivery_latency_seconds", []string{"host", "a.example", "kind", "relay"}, 0},
	} {
		if got := f.Get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if age := f.Get(t, "gomta_queue_oldest_message_age_seconds", "host", "b.example"); age < 3600 {
		t.Errorf("oldest age %v s, want at least an hour", age)
	}
	if age := f.Get(t, "gomta_queue_oldest_message_age_seconds", "host", "a.example"); age != 0 {
		t.Errorf("oldest age of an empty queue %v, want 0", age)
	}
}

// Two processes' worth of metrics share nothing: tests build their own.
func TestRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	m1, m2 := metrics.New(), metrics.New()
	m1.Host("h").SMTP.Opened()
	m2.Host("h")
	if v := metricstest.Gather(t, m2.Registry()).Get(t, "gomta_sessions_total", "host", "h", "proto", "smtp"); v != 0 {
		t.Errorf("m2 counted m1's session: %v", v)
	}
}

func TestNilCountsNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	h := m.Host("x")
	h.SMTP.Opened()
	h.SMTP.Closed()
	h.SMTP.Reply(250)
	h.SMTP.Accepted(1)
	h.POP3.TLS()
	h.POP3.AuthFailed()
	h.Queue.BounceQueued()
	h.Queue.Committed(1, time.Millisecond)
	h.Queue.SetMessages(metrics.StateActive, 1)
	h.Queue.SetOldest(time.Now())
	h.Delivery.Result(metrics.KindLocal, metrics.ResultDelivered, time.Second)
}

// The handler serves the text format that Prometheus's parser reads, with
// the Go runtime and process collectors.
func TestHandlerServesTextFormat(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Host("h").POP3.Opened()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	f := metricstest.Scrape(t, srv.URL)
	if v := f.Get(t, "gomta_sessions_open", "host", "h", "proto", "pop3"); v != 1 {
		t.Errorf("open POP3 sessions %v, want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := f.Value(name); !ok {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}
}
