// Package metrics owns gomta's Prometheus metrics: their names (all
// prefixed gomta_), help texts, labels and buckets; the registry of one
// process (New), with Go's runtime and process collectors; and the small
// handles through which each owner counts what it does: a session server
// (Sessions), a queue (Queue), a delivery worker (Delivery). It is a leaf:
// it imports nothing of gomta, so that the servers under session/, the
// queue and delivery can all import it without importing each other.
//
// Invariants: nothing here reads another package's state. Every value is a
// counter, gauge or histogram that its owner updates as things happen
// (atomic operations inside client_golang), or, for the oldest queued
// message, a time the queue's owner goroutine stores and the scrape only
// reads; a scrape never waits for an actor. There is no process-wide
// state: each New is a registry of its own, so tests may build as many as
// they like in parallel. A nil *Metrics, and every nil handle, counts
// nothing, so code runs the same with metrics off.
package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values.
const (
	ProtoSMTP = "smtp"
	ProtoPOP3 = "pop3"
)

// Metrics is the registry of one process and the metric families in it.
type Metrics struct {
	reg *prometheus.Registry

	sessions, tlsSessions, authFailures *prometheus.CounterVec // host, proto
	sessionsOpen                        *prometheus.GaugeVec   // host, proto
	replies                             *prometheus.CounterVec // host, class
	accepted, acceptedBytes, bounces    *prometheus.CounterVec // host
	deliveries                          *prometheus.CounterVec // host, kind, result
	latency                             *prometheus.HistogramVec
	queueMessages                       *prometheus.GaugeVec // host, state
	batch, fsync                        *prometheus.HistogramVec

	mu    sync.Mutex
	hosts map[string]*Host
}

// latencyBuckets span a local delivery (milliseconds) to a message that
// waited out retries for a day, in seconds.
var latencyBuckets = []float64{.005, .025, .1, .5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// batchBuckets are messages per group commit: 1 when sessions come one at a
// time, growing with the concurrency of committing sessions.
var batchBuckets = prometheus.ExponentialBuckets(1, 2, 10) // 1 .. 512

// fsyncBuckets span a page-cache-backed fsync (tens of microseconds) to a
// disk under pressure (seconds).
var fsyncBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10) // 100 µs .. 26 s

// New builds the metrics of one process in a registry of its own, with the
// Go runtime (go_*) and process (process_*) collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), hosts: map[string]*Host{}}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gomta", Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "gomta", Name: name, Help: help, Buckets: buckets}, labels)
	}
	m.sessions = counter("sessions_total", "SMTP and POP3 sessions started (connections accepted), by protocol.", "host", "proto")
	m.sessionsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gomta", Name: "sessions_open",
		Help: "SMTP and POP3 sessions open now, by protocol."}, []string{"host", "proto"})
	m.tlsSessions = counter("tls_sessions_total", "TLS handshakes completed (STARTTLS, STLS, implicit TLS), by protocol.", "host", "proto")
	m.authFailures = counter("auth_failures_total", "Logins refused for a wrong user name or password, by protocol.", "host", "proto")
	m.replies = counter("smtp_replies_total", "SMTP replies sent, by code class (2xx, 3xx, 4xx, 5xx).", "host", "class")
	m.accepted = counter("messages_accepted_total", "Messages accepted over SMTP (250 at the end of DATA: durable).", "host")
	m.acceptedBytes = counter("messages_accepted_bytes_total", "Octets of the messages accepted over SMTP, Received header included.", "host")
	m.bounces = counter("bounces_total", "Bounces (RFC 3464 DSNs) queued to senders.", "host")
	m.deliveries = counter("deliveries_total",
		"Delivery attempts per recipient, by kind (local, relay) and result (delivered, deferred, bounced).", "host", "kind", "result")
	m.latency = histogram("delivery_latency_seconds", "Time from acceptance to delivery of a recipient, by kind.",
		latencyBuckets, "host", "kind")
	m.queueMessages = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gomta", Name: "queue_messages",
		Help: "Messages in the queue, by state (active: first attempt pending or an attempt in progress; deferred: waiting to be retried; held: held by the operator)."},
		[]string{"host", "state"})
	m.batch = histogram("spool_commit_batch_size", "Messages made durable by one group commit of the spool.", batchBuckets, "host")
	m.fsync = histogram("spool_fsync_seconds", "Time a group commit of the spool spends in fsync (directory and journal).",
		fsyncBuckets, "host")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sessions, m.sessionsOpen, m.tlsSessions, m.authFailures, m.replies, m.accepted, m.acceptedBytes,
		m.bounces, m.deliveries, m.latency, m.queueMessages, m.batch, m.fsync)
	return m
}

// Registry is the process's registry, for tests and for the HTTP handler.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Host is the handles of one mail host. Those of a nil *Metrics are nil
// and count nothing.
type Host struct {
	SMTP, POP3 *Sessions
	Queue      *Queue
	Delivery   *Delivery
}

// Host returns the handles of the mail host name, with their series made
// at once (so that they are scraped as 0 before anything happens); a
// second call for the same name returns the same handles.
func (m *Metrics) Host(name string) *Host {
	if m == nil {
		return &Host{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.hosts[name]; h != nil {
		return h
	}
	h := &Host{SMTP: m.sessionHandles(name, ProtoSMTP), POP3: m.sessionHandles(name, ProtoPOP3),
		Queue: m.queueHandles(name), Delivery: m.deliveryHandles(name)}
	smtp := h.SMTP
	for c := range smtp.replies {
		if c >= 2 {
			smtp.replies[c] = m.replies.WithLabelValues(name, strconv.Itoa(c)+"xx")
		}
	}
	smtp.accepted = m.accepted.WithLabelValues(name)
	smtp.acceptedBytes = m.acceptedBytes.WithLabelValues(name)
	m.hosts[name] = h
	return h
}
