package queue

import (
	"container/heap"
	"time"

	"gomta/session/metrics"
)

// gauges is the schedule as the metrics show it: messages per state and the
// acceptance time of the oldest. Run's goroutine keeps it as entries change
// state and publishes it to atomic gauges once per turn of its loop, so a
// scrape reads numbers and never the schedule. With no metrics it does
// nothing.
type gauges struct {
	m      *metrics.Queue
	counts map[string]int
	// oldest orders messages by acceptance time; an item whose message has
	// left the schedule is dropped when it reaches the top, and the heap is
	// rebuilt when such items outnumber the live ones.
	oldest ageHeap
}

func newGauges(m *metrics.Queue) *gauges {
	return &gauges{m: m, counts: map[string]int{}}
}

// stateOf is the state an entry is counted in: active while its first
// attempt is pending or an attempt is in progress, held while an operator
// holds it (mtactl queue hold), deferred while it waits to be retried.
func stateOf(e *entry) string {
	if e.env.Held && !e.busy {
		return metrics.StateHeld
	}
	if e.busy || e.env.Attempts == 0 {
		return metrics.StateActive
	}
	return metrics.StateDeferred
}

// enter counts an entry that joins the schedule.
func (g *gauges) enter(e *entry) {
	if g.m == nil {
		return
	}
	g.counts[stateOf(e)]++
	heap.Push(&g.oldest, ageItem{received: e.env.Received, id: e.env.ID})
}

// leave uncounts an entry, in state, that left the schedule.
func (g *gauges) leave(state string) {
	if g.m != nil {
		g.counts[state]--
	}
}

// move counts an entry that went from one state to another.
func (g *gauges) move(from, to string) {
	if g.m != nil && from != to {
		g.counts[from]--
		g.counts[to]++
	}
}

// publish writes the counts and the oldest live message's acceptance time
// to the metrics.
func (g *gauges) publish(entries map[string]*entry) {
	if g.m == nil {
		return
	}
	for _, st := range metrics.States {
		g.m.SetMessages(st, g.counts[st])
	}
	if len(g.oldest) > 2*len(entries)+64 {
		g.oldest = g.oldest[:0]
		for id, e := range entries {
			g.oldest = append(g.oldest, ageItem{received: e.env.Received, id: id})
		}
		heap.Init(&g.oldest)
	}
	for len(g.oldest) > 0 && entries[g.oldest[0].id] == nil {
		heap.Pop(&g.oldest)
	}
	if len(g.oldest) == 0 {
		g.m.SetOldest(time.Time{})
		return
	}
	g.m.SetOldest(g.oldest[0].received)
}

// reset shows an empty queue: Run has stopped and schedules nothing.
func (g *gauges) reset() {
	if g.m == nil {
		return
	}
	clear(g.counts)
	g.oldest = g.oldest[:0]
	g.publish(nil)
}

type ageItem struct {
	received time.Time
	id       string
}

// ageHeap orders by acceptance time, oldest first.
type ageHeap []ageItem

func (h ageHeap) Len() int           { return len(h) }
func (h ageHeap) Less(i, j int) bool { return h[i].received.Before(h[j].received) }
func (h ageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ageHeap) Push(x any)        { *h = append(*h, x.(ageItem)) }
func (h *ageHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
