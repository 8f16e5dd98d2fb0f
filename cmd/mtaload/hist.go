package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds, HDR style: values
// below 2^subBits µs have a bucket each; above, every power of two is cut into
// 2^(subBits-1) equal buckets, so a bucket is at most 1/32 (≈3%) of its value
// wide. Buckets grow on demand, so an unused step costs nothing. A hist
// belongs to one worker goroutine (no locking); hists are merged at the end.
type hist struct {
	counts []uint64
	n      uint64
	sum    uint64 // µs, for the mean
	min    uint64
	max    uint64
}

const (
	subBits  = 6
	subCount = 1 << subBits // exact buckets below this value (µs)
	halfSub  = subCount / 2
	maxUS    = 1 << 40 // clamp: ~12.7 days, far beyond any -timeout
)

// bucketOf returns the bucket index of v (µs).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // ≥ 1: how far v is shifted to keep subBits bits
	return e*halfSub + int(v>>uint(e))
}

// bucketHigh is the highest value (µs) that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i/halfSub - 1
	m := uint64(i - e*halfSub) // in [halfSub, subCount)
	return (m+1)<<uint(e) - 1
}

// record adds one duration.
func (h *hist) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d / time.Microsecond)
	}
	v = min(v, maxUS)
	i := bucketOf(v)
	if i >= len(h.counts) {
		h.grow(i + 1)
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += v
}

func (h *hist) grow(n int) {
	// Grow with slack so that a slowly rising latency does not copy each time.
	c := make([]uint64, n+n/2+8)
	copy(c, h.counts)
	h.counts = c
}

// merge adds o into h.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.grow(len(o.counts))
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value (µs) at or below which a fraction q (0..1) of
// the recorded values lie: the upper edge of the bucket holding the value of
// rank ⌈q·n⌉, clamped to [min, max] so that it never overstates the max.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketHigh(i), h.min), h.max)
		}
	}
	return h.max
}

// mean returns the mean in µs.
func (h *hist) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}
