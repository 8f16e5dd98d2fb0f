package mailbox

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkDeliver measures Deliver into one mailbox with 1 and 20 concurrent
// callers, by hard link and by copy, with group commit and without (one new/
// fsync per message). msgs/fsync is the mean group-commit batch.
//
//	go test -run '^$' -bench Deliver -benchtime 2s ./delivery/mailbox/
func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		name    string
		callers int
		copy    bool
		batch   int
	}{
		{"link/callers=1", 1, false, defaultBatch},
		{"link/callers=20", 20, false, defaultBatch},
		{"link/callers=20/nogroup", 20, false, 1},
		{"copy/callers=1", 1, true, defaultBatch},
		{"copy/callers=20", 20, true, defaultBatch},
		{"copy/callers=20/nogroup", 20, true, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := startStore(b, zap.NewNop(), user1)
			s.maxBatch = bc.batch
			if bc.copy {
				s.link = func(string, string) error { return syscall.EXDEV }
			}
			// Several spool files: ext4 caps a file's links at 65000.
			dir := b.TempDir()
			srcs := make([]string, 64)
			for i := range srcs {
				srcs[i] = spool(b, dir, fmt.Sprint(i), msgBody(200)) // ~2 KB
			}
			var next atomic.Int64
			var failed atomic.Value
			b.ResetTimer()
			var wg sync.WaitGroup
			for range bc.callers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if err := s.Deliver(context.Background(), user1, srcs[i%int64(len(srcs))]); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			if n := s.syncs.Load(); n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "msgs/fsync")
			}
			_ = os.RemoveAll(dir)
		})
	}
}
