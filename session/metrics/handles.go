package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sessions counts what one server (SMTP or POP3) of one mail host does. The
// session shell (session/serve) counts sessions; the protocol counts TLS,
// failed logins and, for SMTP, replies and accepted messages. Its methods are
// safe for concurrent use; on a nil *Sessions they do nothing.
type Sessions struct {
	total, tls, authFailures prometheus.Counter
	open                     prometheus.Gauge

	// SMTP only (nil for POP3).
	replies                 [6]prometheus.Counter // by code / 100, 2 to 5
	accepted, acceptedBytes prometheus.Counter
}

func (m *Metrics) sessionHandles(host, proto string) *Sessions {
	return &Sessions{
		total:        m.sessions.WithLabelValues(host, proto),
		open:         m.sessionsOpen.WithLabelValues(host, proto),
		tls:          m.tlsSessions.WithLabelValues(host, proto),
		authFailures: m.authFailures.WithLabelValues(host, proto),
	}
}

// Opened counts a session that begins.
func (s *Sessions) Opened() {
	if s != nil {
		s.total.Inc()
		s.open.Inc()
	}
}

// Closed counts the end of a session Opened counted.
func (s *Sessions) Closed() {
	if s != nil {
		s.open.Dec()
	}
}

// TLS counts a completed TLS handshake.
func (s *Sessions) TLS() {
	if s != nil {
		s.tls.Inc()
	}
}

// AuthFailed counts a login refused for its credentials.
func (s *Sessions) AuthFailed() {
	if s != nil {
		s.authFailures.Inc()
	}
}

// Reply counts an SMTP reply by its code's class; codes outside 200-599
// are not counted.
func (s *Sessions) Reply(code int) {
	if s == nil {
		return
	}
	if c := code / 100; c >= 2 && c < len(s.replies) && s.replies[c] != nil {
		s.replies[c].Inc()
	}
}

// Accepted counts a message accepted over SMTP and its size in octets.
func (s *Sessions) Accepted(bytes int64) {
	if s != nil && s.accepted != nil {
		s.accepted.Inc()
		s.acceptedBytes.Add(float64(bytes))
	}
}

// Queue states, the label values of gomta_queue_messages.
const (
	StateActive   = "active"   // first attempt pending, or an attempt in progress
	StateDeferred = "deferred" // waiting for its next attempt after a temporary failure
	StateHeld     = "held"     // held by the operator (mtactl queue hold): never attempted until released
)

// States lists the queue states a Queue reports, in order.
var States = []string{StateActive, StateDeferred, StateHeld}

// Queue counts what one mail host's queue does. SetMessages and SetOldest
// are called by the queue's owner goroutine only; the rest from any.
// Its methods do nothing on a nil *Queue.
type Queue struct {
	bounces prometheus.Counter
	batch   prometheus.Observer
	fsync   prometheus.Observer
	states  map[string]prometheus.Gauge // read-only after queueHandles
	oldest  atomic.Int64                // Unix nanoseconds of the oldest message's acceptance; 0: empty
}

func (m *Metrics) queueHandles(host string) *Queue {
	q := &Queue{
		bounces: m.bounces.WithLabelValues(host),
		batch:   m.batch.WithLabelValues(host),
		fsync:   m.fsync.WithLabelValues(host),
		states:  map[string]prometheus.Gauge{},
	}
	for _, st := range States {
		q.states[st] = m.queueMessages.WithLabelValues(host, st)
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gomta", Name: "queue_oldest_message_age_seconds",
		Help:        "Age of the oldest message in the queue (since its acceptance); 0 when the queue is empty.",
		ConstLabels: prometheus.Labels{"host": host},
	}, q.oldestAge))
	return q
}

// BounceQueued counts a bounce made durable in the queue.
func (q *Queue) BounceQueued() {
	if q != nil {
		q.bounces.Inc()
	}
}

// Committed counts one group commit of n messages that spent fsync in fsync.
func (q *Queue) Committed(n int, fsync time.Duration) {
	if q != nil {
		q.batch.Observe(float64(n))
		q.fsync.Observe(fsync.Seconds())
	}
}

// SetMessages sets the number of messages in state (one of States).
func (q *Queue) SetMessages(state string, n int) {
	if q == nil {
		return
	}
	if g := q.states[state]; g != nil {
		g.Set(float64(n))
	}
}

// SetOldest records the acceptance time of the oldest message in the
// queue; the zero time when it is empty.
func (q *Queue) SetOldest(t time.Time) {
	if q == nil {
		return
	}
	if t.IsZero() {
		q.oldest.Store(0)
		return
	}
	q.oldest.Store(t.UnixNano())
}

// oldestAge is the scrape's reading of SetOldest.
func (q *Queue) oldestAge() float64 {
	ns := q.oldest.Load()
	if ns == 0 {
		return 0
	}
	return max(time.Since(time.Unix(0, ns)).Seconds(), 0)
}

// Delivery kinds and results, the label values of gomta_deliveries_total.
const (
	KindLocal = "local"
	KindRelay = "relay"

	ResultDelivered = "delivered"
	ResultDeferred  = "deferred" // failed for now: retried
	ResultBounced   = "bounced"  // failed for good: bounced (or, for a null sender, dropped)
)

var (
	kinds   = []string{KindLocal, KindRelay}
	results = []string{ResultDelivered, ResultDeferred, ResultBounced}
)

// Delivery counts one mail host's delivery results per recipient. Its
// methods are safe for concurrent use and do nothing on a nil *Delivery.
type Delivery struct {
	results map[[2]string]prometheus.Counter // kind, result; read-only
	latency map[string]prometheus.Observer   // kind; read-only
}

func (m *Metrics) deliveryHandles(host string) *Delivery {
	d := &Delivery{results: map[[2]string]prometheus.Counter{}, latency: map[string]prometheus.Observer{}}
	for _, k := range kinds {
		for _, r := range results {
			d.results[[2]string{k, r}] = m.deliveries.WithLabelValues(host, k, r)
		}
		d.latency[k] = m.latency.WithLabelValues(host, k)
	}
	return d
}

// Result counts the result of one recipient's attempt; for a delivered
// one, sinceAcceptance is observed as its delivery latency.
func (d *Delivery) Result(kind, result string, sinceAcceptance time.Duration) {
	if d == nil {
		return
	}
	if c := d.results[[2]string{kind, result}]; c != nil {
		c.Inc()
	}
	if o := d.latency[kind]; o != nil && result == ResultDelivered {
		o.Observe(sinceAcceptance.Seconds())
	}
}
