package jsq

import (
	"context"
	"time"

	"go.uber.org/zap"

	"gomta/queue"
	"gomta/session/metrics"
)

// The queue's gauges (messages per state, age of the oldest) are read from
// the cluster's states, so every node shows the cluster's whole queue, as
// mtactl status does. A reading costs one KV get per queued message, so it
// is made gaugeCost times less often than it takes, gaugeEvery at most.
const (
	gaugeEvery = 2 * time.Second
	gaugeCost  = 10
)

// stateOf is the metrics' state of st, by the local queue's rule
// (queue/gauges.go): held while the operator holds it and no attempt runs,
// active while an attempt runs or its first one is pending, else deferred.
func stateOf(st *state) string {
	if st.Held && st.Node == "" {
		return metrics.StateHeld
	}
	if st.Node != "" || st.Attempts == 0 {
		return metrics.StateActive
	}
	return metrics.StateDeferred
}

// gauges publishes the queue's counts to the metrics until ctx ends, then
// shows an empty queue (this node no longer reports it), as the local
// queue does when its Run stops.
func (q *Queue) gauges(ctx context.Context) {
	if q.metrics == nil {
		return
	}
	defer q.publish(queue.Stats{})
	for {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		s, err := q.Stats(rctx)
		cancel()
		if err == nil {
			q.publish(s)
		} else if ctx.Err() == nil {
			// The gauges keep their last reading: a scrape sees numbers
			// a little old rather than a queue that seems empty.
			q.log.Warn("queue gauges not read", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(gaugeEvery, gaugeCost*time.Since(start))):
		}
	}
}

// publish writes one reading to the metrics.
func (q *Queue) publish(s queue.Stats) {
	q.metrics.SetMessages(metrics.StateActive, s.Active)
	q.metrics.SetMessages(metrics.StateDeferred, s.Deferred)
	q.metrics.SetMessages(metrics.StateHeld, s.Held)
	q.metrics.SetOldest(s.Oldest)
}
