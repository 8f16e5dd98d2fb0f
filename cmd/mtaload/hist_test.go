package main

import (
	"testing"
	"time"
)

func TestBucketsContinuous(t *testing.T) {
	t.Parallel()
	// Every value falls in a bucket whose range contains it, and buckets are
	// contiguous: the index never jumps by more than one.
	prev := -1
	for v := uint64(0); v < 1<<16; v++ {
		i := bucketOf(v)
		if i != prev && i != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		if v > bucketHigh(i) || (i > 0 && v <= bucketHigh(i-1)) {
			t.Fatalf("v %d outside bucket %d (%d..%d]", v, i, bucketHigh(i-1), bucketHigh(i))
		}
		prev = i
	}
	if i := bucketOf(maxUS); bucketHigh(i) < maxUS || i > 2000 {
		t.Errorf("bucketOf(maxUS) = %d, high %d", i, bucketHigh(i))
	}
}

func TestQuantiles(t *testing.T) {
	t.Parallel()
	us := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Microsecond
		}
		return out
	}
	seq := func(from, to int) []time.Duration {
		var out []time.Duration
		for v := from; v <= to; v++ {
			out = append(out, time.Duration(v)*time.Microsecond)
		}
		return out
	}
	cases := []struct {
		name           string
		in             []time.Duration
		p50, p90, p99  uint64
		max, min, mean float64
	}{
		{"empty", nil, 0, 0, 0, 0, 0, 0},
		{"one", us(7), 7, 7, 7, 7, 7, 7},
		{"exact range 1..60", seq(1, 60), 30, 54, 60, 60, 1, 30.5},
		{"nearest rank 1..10", seq(1, 10), 5, 9, 10, 10, 1, 5.5},
		// 1000..1999 µs: buckets 32 µs wide; the result is the upper edge of
		// the bucket holding the exact percentile (1499, 1899, 1989).
		{"log buckets", seq(1000, 1999), 1503, 1919, 1999, 1999, 1000, 1499.5},
		// One slow outlier is the max and the p99 of 100 values' top 1%.
		{"outlier", append(seq(1, 99), 5*time.Second), 50, 91, 99, 5e6, 1, (99*100/2 + 5e6) / 100.0},
		{"sub-µs and negative count as 0", []time.Duration{-5, 300}, 0, 0, 0, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h hist
			for _, d := range tc.in {
				h.record(d)
			}
			got := [3]uint64{h.quantile(0.5), h.quantile(0.9), h.quantile(0.99)}
			if want := [3]uint64{tc.p50, tc.p90, tc.p99}; got != want {
				t.Errorf("p50/p90/p99 = %v, want %v", got, want)
			}
			if float64(h.max) != tc.max || float64(h.min) != tc.min || h.mean() != tc.mean {
				t.Errorf("max %d min %d mean %v, want %v %v %v", h.max, h.min, h.mean(), tc.max, tc.min, tc.mean)
			}
		})
	}
}

func TestQuantileRelativeError(t *testing.T) {
	t.Parallel()
	// For any single value the reported percentile is within 1/32 above it.
	for _, v := range []uint64{64, 100, 1000, 12345, 999999, 1 << 30} {
		var h hist
		h.record(time.Duration(v) * time.Microsecond)
		h.record(time.Duration(v*4) * time.Microsecond) // so that max does not clamp p50
		if got := h.quantile(0.5); got < v || float64(got-v) > float64(v)/32 {
			t.Errorf("p50 of %d = %d", v, got)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	var a, b, all hist
	for v := range 5000 {
		d := time.Duration(v*v%7919) * time.Microsecond
		all.record(d)
		if v%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m hist
	m.merge(&a)
	m.merge(&b)
	m.merge(&hist{})
	for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("q %v: merged %d, direct %d", q, m.quantile(q), all.quantile(q))
		}
	}
	if m.n != all.n || m.sum != all.sum || m.min != all.min || m.max != all.max {
		t.Errorf("merged n/sum/min/max %d/%d/%d/%d, direct %d/%d/%d/%d", m.n, m.sum, m.min, m.max, all.n, all.sum, all.min, all.max)
	}
}

func TestRecordAllocatesNothingOnceGrown(t *testing.T) {
	var s stats
	s.trace("mail", time.Second)
	allocs := testing.AllocsPerRun(1000, func() {
		s.trace("mail", 150*time.Microsecond)
		s.trace("mail", 900*time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per record", allocs)
	}
}
