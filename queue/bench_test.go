package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkCommit measures durable commits of 1 KiB messages (NewMessage,
// Write, Commit) by 1 and 20 concurrent committers, with group commit and,
// as the baseline, with every commit syncing the directories alone.
// Committers are plain goroutines rather than b.RunParallel so that their
// number is exact whatever GOMAXPROCS is.
//
//	go test -run x -bench . -benchtime 2000x ./queue/
func BenchmarkCommit(b *testing.B) {
	for _, solo := range []bool{false, true} {
		for _, n := range []int{1, 20} {
			name := fmt.Sprintf("group/committers=%d", n)
			if solo {
				name = fmt.Sprintf("nogroup/committers=%d", n)
			}
			b.Run(name, func(b *testing.B) { benchCommit(b, n, solo) })
		}
	}
}

func benchCommit(b *testing.B, committers int, solo bool) {
	q, err := Open(Options{Dir: b.TempDir(), Logger: zap.NewNop(), MaxMessages: -1})
	if err != nil {
		b.Fatal(err)
	}
	q.gc.solo = solo
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
	q.gc.mu.Lock()
	b.ReportMetric(float64(b.N)/float64(q.gc.batches), "commits/batch")
	q.gc.mu.Unlock()
}

// BenchmarkCommitChurn is BenchmarkCommit at steady state: every committed
// message is removed again (as delivery does). As local delivery does, the
// body is hard-linked elsewhere (the "Maildir") before the removal, so its
// inode survives. On ext4 without a journal a new inode is slow to allocate
// while the group holds many recently freed ones: with an envelope file per
// message (before the journal) every removal freed one and every commit paid.
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
	maildir := b.TempDir()
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
				if err := os.Link(q.bodyPath(d.ID()), filepath.Join(maildir, d.ID())); err != nil {
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
