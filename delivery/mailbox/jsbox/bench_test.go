package jsbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gomta/delivery/mailbox"
	"gomta/mta/cluster/natstest"
)

// benchBody is a body of about size octets, CRLF lines.
func benchBody(size int) string {
	var sb strings.Builder
	sb.WriteString("Subject: bench\r\n\r\n")
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "line %08d of the benchmark body, long enough to look like text\r\n", i)
	}
	return sb.String()
}

func benchSpool(b *testing.B, size int) string {
	p := filepath.Join(b.TempDir(), "body")
	if err := os.WriteFile(p, []byte(benchBody(size)), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkDeliver measures Deliver (publish acknowledged by a one-node
// embedded JetStream, file store, the server's default sync) into one
// mailbox: a 2 KB body with 1 and 20 concurrent callers, and a 1 MiB body,
// which is over the default max payload and goes through the object store.
//
//	go test -run '^$' -bench Deliver -benchtime 2s ./delivery/mailbox/jsbox/
func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		name    string
		callers int
		size    int
	}{
		{"2KB/callers=1", 1, 2000},
		{"2KB/callers=20", 20, 2000},
		{"1MiB/callers=1", 1, 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := natstest.Start(b, 0)
			n := startNode(b, srv, "n1", 0, "alice@mail.test")
			path := benchSpool(b, bc.size)
			var next atomic.Int64
			var failed atomic.Value
			b.SetBytes(int64(bc.size))
			b.ResetTimer()
			var wg sync.WaitGroup
			for range bc.callers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						d := mailbox.Delivery{User: "alice@mail.test", From: "a@x.test", MsgID: fmt.Sprint("m", i), BodyPath: path}
						if err := n.s.Deliver(context.Background(), d); err != nil {
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
		})
	}
}

// BenchmarkOpen measures a POP3 session's Open and Close (lease taken,
// listing of a mailbox of 10 or 1,000 2 KB messages read headers-only,
// lease released).
//
//	go test -run '^$' -bench Open -benchtime 2s ./delivery/mailbox/jsbox/
func BenchmarkOpen(b *testing.B) {
	for _, msgs := range []int{10, 1000} {
		b.Run(fmt.Sprint("msgs=", msgs), func(b *testing.B) {
			srv := natstest.Start(b, 0)
			n := startNode(b, srv, "n1", 0, "alice@mail.test")
			path := benchSpool(b, 2000)
			for i := range msgs {
				d := mailbox.Delivery{User: "alice@mail.test", From: "a@x.test", MsgID: fmt.Sprint("m", i), BodyPath: path}
				if err := n.s.Deliver(context.Background(), d); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				box, err := n.s.Open(context.Background(), "alice@mail.test")
				if err != nil {
					b.Fatal(err)
				}
				if len(box.List()) != msgs {
					b.Fatalf("listed %d, want %d", len(box.List()), msgs)
				}
				box.Close()
			}
		})
	}
}

// BenchmarkDeliverInlineLimit measures Deliver and a RETR of a 300 KiB
// message kept in the stream message (InlineMax 1 MiB, as before the
// 256 KiB limit) and in the object store (the default): time, and with
// -benchmem the octets allocated per message.
//
//	go test -run '^$' -bench DeliverInlineLimit -benchmem ./delivery/mailbox/jsbox/
func BenchmarkDeliverInlineLimit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		inline int64
	}{{"300KiB/inline", 1 << 20}, {"300KiB/object", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := natstest.Start(b, 0)
			ctx := context.Background()
			s, err := New(ctx, Options{JS: srv.JS, Host: testHost, Node: "n1", InlineMax: bc.inline, Users: []string{"alice@mail.test"}})
			if err != nil {
				b.Fatal(err)
			}
			path := benchSpool(b, 300<<10)
			b.SetBytes(300 << 10)
			b.ResetTimer()
			for i := range b.N {
				d := mailbox.Delivery{User: "alice@mail.test", From: "a@x.test", MsgID: fmt.Sprint("m", i), BodyPath: path}
				if err := s.Deliver(ctx, d); err != nil {
					b.Fatal(err)
				}
				box, err := s.Open(ctx, "alice@mail.test")
				if err != nil {
					b.Fatal(err)
				}
				r, err := box.Open(ctx, 0)
				if err == nil {
					_, err = io.Copy(io.Discard, r)
					r.Close()
				}
				if err == nil {
					err = box.Commit(ctx, []int{0})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
