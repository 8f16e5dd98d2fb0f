package smtp

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// idleSessions is how many greeted, silent sessions BenchmarkIdleSession holds.
const idleSessions = 2000

// BenchmarkIdleSession reports the memory an idle SMTP session costs (W6 in
// BENCHMARKS.md holds 10,000 of them in mtad): HeapInuse+StackInuse after
// GC with idleSessions greeted sessions open on loopback, minus before,
// divided by their number, as "B/session" (and the stacks' part of it as
// "stack-B/session"). The client's side of each connection (its net.Conn,
// about 0.3 KiB) lives in the same process and is counted too. It is
// reported, not asserted: compare it across commits.
func BenchmarkIdleSession(b *testing.B) {
	srv, addr := startServer(b, Config{}, &fakeBackend{keep: 1})
	for b.Loop() {
		heap0, stack0 := inuse()
		conns := holdIdle(b, addr, idleSessions)
		heap1, stack1 := inuse()
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/idleSessions, "B/session")
		b.ReportMetric(float64(stack1-stack0)/idleSessions, "stack-B/session")
		for _, c := range conns {
			c.Close()
		}
		waitSessions(b, srv, 0)
	}
}

// inuse is the heap and stack memory in use after a collection.
func inuse() (heap, stack int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// holdIdle opens n sessions and reads each greeting.
func holdIdle(b *testing.B, addr string, n int) []net.Conn {
	conns := make([]net.Conn, 0, n)
	var buf [512]byte
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf[:]); err != nil { // the greeting: one write
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// waitSessions waits (bounded) until the server runs n sessions.
func waitSessions(b *testing.B, srv *Server, n int) {
	for range 1000 {
		if srv.Sessions() == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("%d sessions still running, want %d", srv.Sessions(), n)
}
