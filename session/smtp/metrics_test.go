package smtp

import (
	"testing"

	"gomta/session/metrics"
	"gomta/session/metrics/metricstest"
)

// skipReply reads the lines of one (multi-line) reply.
func (cl *client) skipReply() {
	cl.t.Helper()
	for {
		line, err := cl.readLine()
		if err != nil {
			cl.t.Fatalf("reading a reply: %v", err)
		}
		if len(line) < 4 || line[3] != '-' {
			return
		}
	}
}

// A session's replies are counted by class, its message, TLS handshake and
// failed login once each, as they happen.
func TestSessionCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll, TLSConfig: serverTLS(t),
		Metrics: m.Host(testHost).SMTP}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.send("EHLO client.example")
	cl.skipReply()
	cl.send("STARTTLS")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.startTLS()
	cl.send("EHLO client.example")
	cl.skipReply()
	cl.send("AUTH PLAIN " + plainResp("", "alice", "guess"))
	cl.expect("535 5.7.8 authentication credentials invalid")
	msg := cl.sendMail(be, 0)
	cl.send("QUIT")
	cl.expect("221 2.0.0 " + testHost + " closing connection")

	f := metricstest.Gather(t, m.Registry())
	host := []string{"host", testHost}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		// 220 greeting, EHLO, 220 STARTTLS, EHLO, MAIL, RCPT, end of DATA, 221.
		{"gomta_smtp_replies_total", append(host, "class", "2xx"), 8},
		{"gomta_smtp_replies_total", append(host, "class", "3xx"), 1},
		{"gomta_smtp_replies_total", append(host, "class", "4xx"), 0},
		{"gomta_smtp_replies_total", append(host, "class", "5xx"), 1},
		{"gomta_messages_accepted_total", host, 1},
		{"gomta_messages_accepted_bytes_total", host, float64(msg.n)},
		{"gomta_tls_sessions_total", append(host, "proto", "smtp"), 1},
		{"gomta_auth_failures_total", append(host, "proto", "smtp"), 1},
		{"gomta_sessions_total", append(host, "proto", "smtp"), 1},
	} {
		if got := f.Get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
