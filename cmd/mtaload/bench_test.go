package main

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/smtp"
)

// discardBackend accepts everything and keeps nothing.
type discardBackend struct{ commits atomic.Int64 }

func (b *discardBackend) Mail(context.Context, *smtp.Peer, string) error         { return nil }
func (b *discardBackend) Rcpt(context.Context, *smtp.Peer, string, string) error { return nil }
func (b *discardBackend) NewMessage(context.Context, *smtp.Peer) (smtp.MessageWriter, error) {
	return discardMessage{b}, nil
}

type discardMessage struct{ b *discardBackend }

func (m discardMessage) Write(p []byte) (int, error) { return len(p), nil }
func (discardMessage) ID() string                    { return "discard" }
func (discardMessage) Abort()                        {}
func (m discardMessage) Commit(context.Context, string, []string) error {
	m.b.commits.Add(1)
	return nil
}

// BenchmarkSMTPLoad measures mtaload's own throughput against an in-process
// accept-and-discard gomta SMTP server (both share the CPU), plain and with
// -tls (STARTTLS; sessions resume through the shared cache) and -auth:
//
//	go test -run '^$' -bench SMTPLoad -benchtime 20000x ./cmd/mtaload/
func BenchmarkSMTPLoad(b *testing.B) {
	for _, tc := range []struct {
		name       string
		conc       int
		reuse      int
		size       int
		pipelining bool
		tls, auth  bool // -tls (STARTTLS), -auth
	}{
		{"c8-reuse100-1k-pipelined", 8, 100, 1024, true, false, false},
		{"c8-reuse100-1k-pipelined-tls", 8, 100, 1024, true, true, false},
		{"c8-reuse100-1k-stepwise", 8, 100, 1024, false, false, false},
		{"c8-reuse1-1k-pipelined", 8, 1, 1024, true, false, false},
		{"c8-reuse1-1k-pipelined-tls", 8, 1, 1024, true, true, false},
		{"c8-reuse1-1k-pipelined-tls-auth", 8, 1, 1024, true, true, true},
		{"c32-reuse100-10k-pipelined", 32, 100, 10 << 10, true, false, false},
		{"c32-reuse100-10k-pipelined-tls", 32, 100, 10 << 10, true, true, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := &discardBackend{}
			var scfg smtp.Config
			if tc.tls {
				scfg.TLSConfig, _ = mtatest.TLS(b, "")
				scfg.Auth = func(_ context.Context, user, pass string) bool { return user == loadUser && pass == loadPass }
			}
			addr, _ := startSMTPConfig(b, scfg, be)
			cfg := &smtpConfig{
				common: common{addr: addr, conc: tc.conc, n: int64(b.N), timeout: defaultTimeout, cmdTimeout: defaultCmdTimeout},
				size:   tc.size, rcpts: 1, from: "bench@localhost", to: "user%d@bench.test", toN: 100,
				reuse: tc.reuse, pipelining: tc.pipelining, helo: "bench", runID: "bench", tls: tc.tls,
			}
			if tc.tls {
				cfg.tlsConfig = loadTLSConfig()
			}
			if tc.auth {
				cfg.auth, cfg.user, cfg.pass = "set", loadUser, loadPass
			}
			b.ReportAllocs()
			b.ResetTimer()
			res := loadSMTP(cfg, addr, io.Discard)
			b.StopTimer()
			if res.total.okUnits != int64(b.N) || be.commits.Load() != int64(b.N) {
				b.Fatalf("ok %d, server commits %d, want %d; errors %v", res.total.okUnits, be.commits.Load(), b.N, errorGroups(res.total.errs))
			}
			b.ReportMetric(float64(b.N)/res.elapsed.Seconds(), "msgs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
