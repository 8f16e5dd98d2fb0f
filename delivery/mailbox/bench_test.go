package mailbox

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkDeliver measures Deliver (trace headers + kernel-side copy of the
// spool file) into one mailbox with 1 and 20 concurrent callers, with group
// commit and without. The
// baseline without it ("nogroup") lets one Deliver at a time reach the
// actor, which then finds no other delivery waiting: one new/ fsync per
// message.
//
//	go test -run '^$' -bench Deliver -benchtime 2s ./delivery/mailbox/
func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		name    string
		callers int
		nogroup bool
	}{
		{"callers=1", 1, false},
		{"callers=20", 20, false},
		{"callers=20/nogroup", 20, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := startStore(b, zap.NewNop(), user1)
			dir := b.TempDir()
			srcs := make([]string, 64)
			for i := range srcs {
				srcs[i] = spool(b, dir, fmt.Sprint(i), msgBody(200)) // ~2 KB
			}
			var next atomic.Int64
			var alone sync.Mutex // taken around Deliver in the nogroup baseline
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
						if bc.nogroup {
							alone.Lock()
						}
						err := s.Deliver(context.Background(), Delivery{User: user1, From: "a@x.test", BodyPath: srcs[i%int64(len(srcs))]})
						if bc.nogroup {
							alone.Unlock()
						}
						if err != nil {
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
			_ = os.RemoveAll(dir)
		})
	}
}
