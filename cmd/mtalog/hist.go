package main

import (
	"math"
	"time"
)

// histogram records delays in logarithmic buckets 2 % wide: percentiles
// within 2 % of the exact figure, in memory that does not grow with the
// number of deliveries.
type histogram struct {
	buckets []int64
	n       int64
	max     int64 // ns, exact
	inRange [len(delayRanges)]int64
}

// bucketRatio is each bucket's width: bucket i holds delays up to
// bucketRatio^i microseconds.
const bucketRatio = 1.02

var logRatio = math.Log(bucketRatio)

// delayRanges are the bounds of the delay chart's bars.
var delayRanges = [...]struct {
	Label string
	Upto  time.Duration // exclusive; 0 for no bound
}{
	{"< 1 s", time.Second}, {"1–10 s", 10 * time.Second}, {"10 s–1 min", time.Minute},
	{"1–10 min", 10 * time.Minute}, {"10 min–1 h", time.Hour}, {"≥ 1 h", 0},
}

func (h *histogram) add(ns int64) {
	us := float64(ns) / 1e3
	i := 0
	if us > 1 {
		i = int(math.Ceil(math.Log(us) / logRatio))
	}
	if i >= len(h.buckets) {
		h.buckets = append(h.buckets, make([]int64, i+1-len(h.buckets))...)
	}
	h.buckets[i]++
	h.n++
	h.max = max(h.max, ns)
	for r, dr := range delayRanges {
		if dr.Upto == 0 || ns < int64(dr.Upto) {
			h.inRange[r]++
			break
		}
	}
}

// quantile is the upper bound of the bucket holding the q-quantile, in ns,
// never above the maximum seen.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			return min(int64(math.Pow(bucketRatio, float64(i))*1e3), h.max)
		}
	}
	return h.max
}

// DelayStats is the delay from acceptance to delivery, per delivered
// recipient, in milliseconds.
type DelayStats struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *histogram) stats() DelayStats {
	ms := func(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
	return DelayStats{Count: h.n, P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), Max: ms(h.max)}
}

// DelayRange is one bar of the delay chart.
type DelayRange struct {
	Label string `json:"range"`
	Count int64  `json:"count"`
}

func (h *histogram) ranges() []DelayRange {
	out := make([]DelayRange, len(delayRanges))
	for i, dr := range delayRanges {
		out[i] = DelayRange{dr.Label, h.inRange[i]}
	}
	return out
}
