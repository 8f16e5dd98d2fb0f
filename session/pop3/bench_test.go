package pop3_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"

	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/pop3client"
)

// BenchmarkSession measures one whole POP3 session over loopback with the
// real client: login, STAT, LIST, RETR of every message, QUIT.
//
//	go test -run '^$' -bench Session -benchmem ./session/pop3/
func BenchmarkSession(b *testing.B) {
	const n, size = 10, 4096
	be := pop3test.New()
	be.AddUser("alice", "secret")
	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", size/80)
	for range n {
		be.Add("alice", []byte(body))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := pop3.NewServer(pop3.Config{Hostname: host, Logger: zap.NewNop()}, be)
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	addr := l.Addr().String()
	ctx := context.Background()

	b.SetBytes(int64(n * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := pop3client.Dial(ctx, addr, pop3client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Login("alice", "secret"); err != nil {
			b.Fatal(err)
		}
		if cnt, _, err := c.Stat(); err != nil || cnt != n {
			b.Fatalf("Stat = %d, %v", cnt, err)
		}
		if _, err := c.List(); err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			if m, err := c.Retr(i); err != nil || len(m) != len(body) {
				b.Fatalf("Retr(%d) = %d octets, %v", i, len(m), err)
			}
		}
		if err := c.Quit(); err != nil {
			b.Fatal(err)
		}
	}
}
