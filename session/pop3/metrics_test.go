package pop3_test

import (
	"testing"

	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
	"gomta/session/pop3"
)

// A POP3 session, its TLS handshake and its failed login are counted once
// each; the open gauge comes back to 0 when the session has ended.
func TestSessionCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	cert := newCert(t)
	ts := start(t, newBackend(), pop3.Config{TLSConfig: cert.server, Metrics: m.Host(host).POP3})
	c := dial(t, ts.addr)
	c.startTLS(cert.client)
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS wrong", "-ERR [AUTH] invalid user name or password")
	f := metricstest.Gather(t, m.Registry())
	for _, c := range []struct {
		name string
		want float64
	}{
		{"gomta_sessions_total", 1},
		{"gomta_sessions_open", 1},
		{"gomta_tls_sessions_total", 1},
		{"gomta_auth_failures_total", 1},
	} {
		if got := f.Get(t, c.name, "host", host, "proto", "pop3"); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	c.cmd("QUIT", "+OK "+host+" signing off")
	c.expectEOF()
	shutdownNow(t, ts) // returns once every session has ended
	if got := metricstest.Gather(t, m.Registry()).Get(t, "gomta_sessions_open", "host", host, "proto", "pop3"); got != 0 {
		t.Errorf("sessions_open after the session ended = %v, want 0", got)
	}
}
