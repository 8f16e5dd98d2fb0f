package queue

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkCommit measures durable commits of 1 KiB messages (NewMessage,
// Write, Commit) by 1 and 20 concurrent committers, with group commit and,
// as the baseline, with every batch the group committer gathers flushed one
// record at a time (one msg/ fsync, one write and one fdatasync each).
// Committers are plain goroutines rather than b.RunParallel so that their
// number is exact whatever GOMAXPROCS is.
//
//	go test -run x -bench . -benchtime 2000x ./queue/
func BenchmarkCommit(b *testing.B) {
	for _, alone := range []bool{false, true} {
		for _, n := range []int{1, 20} {
			name := fmt.Sprintf("group/committers=%d", n)
			if alone {
				name = fmt.Sprintf("nogroup/committers=%d", n)
			}
			b.Run(name, func(b *testing.B) { benchCommit(b, n, alone) })
		}
	}
}

func benchCommit(b *testing.B, committers int, alone bool) {
	q, err := Open(Options{Dir: b.TempDir(), Logger: zap.NewNop(), MaxMessages: -1})
	if err != nil {
		b.Fatal(err)
	}
	var batches atomic.Int64
	flush := q.committer.flush
	q.committer.flush = func(recs []rec) error {
		if !alone {
			batches.Add(1)
			return flush(recs)
		}
		var first error
		for _, r := range recs {
			batches.Add(1)
			if err := flush([]rec{r}); first == nil {
				first = err
			}
		}
		return first
	}
	body := bytes.Repeat([]byte("0123456789abcde\n"), 64)
	rcpts := []string{"rcpt@example.test"}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	for range committers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				d, err := q.NewMessage(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := d.Write(body); err != nil {
					b.Error(err)
					return
				}
				if err := d.Commit(ctx, "sender@example.test", rcpts); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(b.N)/float64(batches.Load()), "commits/batch")
}

// BenchmarkCommitChurn is BenchmarkCommit at steady state: every committed
// message is removed again (as delivery does, after copying it into the
// Maildir), so its inode is freed. On ext4 a new inode is slow to allocate
// while the group holds many recently freed ones, which is why envelopes are journal records
// rather than files: this benchmark shows whether commits stay fast.
//
//	go test -run x -bench CommitChurn -benchtime 5000x ./queue/
func BenchmarkCommitChurn(b *testing.B) {
	q, err := Open(Options{Dir: b.TempDir(), Logger: zap.NewNop(), MaxMessages: -1})
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcde\n"), 64)
	rcpts := []string{"rcpt@example.test"}
	ctx := context.Background()
	b.ReportAllocs()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 20 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				d, err := q.NewMessage(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := d.Write(body); err != nil {
					b.Error(err)
					return
				}
				if err := d.Commit(ctx, "sender@example.test", rcpts); err != nil {
					b.Error(err)
					return
				}
				if err := q.remove(d.ID()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
