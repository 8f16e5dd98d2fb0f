package jsq

import (
	"bytes"
	"context"
	"io"
	"testing"

	"gomta/mta/cluster/natstest"
)

// BenchmarkCommit measures one message accepted into the JetStream queue
// (stage, publish with de-duplication id, state create: each acknowledged
// by the embedded one-node server) for a 4 KiB and a 2 MiB body (the
// latter through the object store), no Run.
func BenchmarkCommit(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"4KiB", 4 << 10}, {"2MiB", 2 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			s := natstest.Start(b, 0)
			ctx := context.Background()
			q, err := Open(ctx, Options{JS: s.JS, Host: "example.org", Node: "n1", MaxMessages: -1, TmpDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte("0123456789abcdef"), bc.size/16)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				w, err := q.NewMessage(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
				if err := w.Commit(ctx, "a@example.org", []string{"b@example.org"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
