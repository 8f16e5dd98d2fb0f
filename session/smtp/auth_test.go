package smtp

import (
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testAuth knows one account: alice / secret.
func testAuth(_ context.Context, user, pass string) bool {
	return user == "alice" && pass == "secret"
}

func allowAll(net.Addr) bool { return true }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func plainResp(authz, user, pass string) string { return b64(authz + "\x00" + user + "\x00" + pass) }

// TestAuthExchanges checks each AUTH exchange on a connection where AUTH is
// allowed in the clear: a script of client lines and the exact replies.
func TestAuthExchanges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script []string // alternating: client line, server reply ("" = none expected)
		user   string   // Peer.AuthUser at the next MAIL
	}{
		{"plain initial", []string{"AUTH PLAIN " + plainResp("", "alice", "secret"), "235 2.7.0 authentication successful"}, "alice"},
		{"plain authzid", []string{"AUTH plain " + plainResp("alice", "alice", "secret"), "235 2.7.0 authentication successful"}, "alice"},
		{"plain other authzid", []string{"AUTH PLAIN " + plainResp("bob", "alice", "secret"), "535 5.7.8 authentication credentials invalid"}, ""},
		{"plain continuation", []string{"AUTH PLAIN", "334 ", plainResp("", "alice", "secret"), "235 2.7.0 authentication successful"}, "alice"},
		{"login", []string{"AUTH LOGIN", "334 VXNlcm5hbWU6", b64("alice"), "334 UGFzc3dvcmQ6", b64("secret"), "235 2.7.0 authentication successful"}, "alice"},
		{"login initial", []string{"AUTH LOGIN " + b64("alice"), "334 UGFzc3dvcmQ6", b64("secret"), "235 2.7.0 authentication successful"}, "alice"},
		{"wrong password", []string{"AUTH PLAIN " + plainResp("", "alice", "guess"), "535 5.7.8 authentication credentials invalid"}, ""},
		{"login wrong password", []string{"AUTH LOGIN", "334 VXNlcm5hbWU6", b64("alice"), "334 UGFzc3dvcmQ6", b64("guess"), "535 5.7.8 authentication credentials invalid"}, ""},
		{"cancel plain", []string{"AUTH PLAIN", "334 ", "*", "501 5.0.0 authentication cancelled"}, ""},
		{"cancel login", []string{"AUTH LOGIN", "334 VXNlcm5hbWU6", b64("alice"), "334 UGFzc3dvcmQ6", "*", "501 5.0.0 authentication cancelled"}, ""},
		{"bad base64", []string{"AUTH PLAIN !!!notbase64", "501 5.5.2 invalid base64 data"}, ""},
		{"bad base64 continuation", []string{"AUTH LOGIN", "334 VXNlcm5hbWU6", "a=b=", "501 5.5.2 invalid base64 data"}, ""},
		{"plain without NULs", []string{"AUTH PLAIN " + b64("alicesecret"), "501 5.5.2 malformed authentication response"}, ""},
		{"empty response", []string{"AUTH PLAIN =", "501 5.5.2 malformed authentication response"}, ""},
		{"unknown mechanism", []string{"AUTH CRAM-MD5", "504 5.5.4 unrecognized authentication mechanism"}, ""},
		{"no mechanism", []string{"AUTH", "501 5.5.4 argument required"}, ""},
		{"twice", []string{"AUTH PLAIN " + plainResp("", "alice", "secret"), "235 2.7.0 authentication successful",
			"AUTH PLAIN " + plainResp("", "alice", "secret"), "503 5.5.1 already authenticated"}, "alice"},
		{"during a transaction", []string{"MAIL FROM:<a@example.org>", "250 2.1.0 sender OK",
			"AUTH PLAIN " + plainResp("", "alice", "secret"), "503 5.5.1 AUTH not allowed during a mail transaction", "RSET", "250 2.0.0 OK"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := &fakeBackend{}
			_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll}, be)
			cl := dial(t, addr)
			cl.expect("220 " + testHost + " ESMTP gomta")
			cl.ehlo("AUTH PLAIN LOGIN")
			for i := 0; i < len(tc.script); i += 2 {
				cl.send(tc.script[i])
				cl.expect(tc.script[i+1])
			}
			cl.send("MAIL FROM:<x@example.org>")
			cl.expect("250 2.1.0 sender OK")
			be.mu.Lock()
			c := be.conns[len(be.conns)-1]
			be.mu.Unlock()
			if c.AuthUser != tc.user {
				t.Errorf("AuthUser %q, want %q", c.AuthUser, tc.user)
			}
		})
	}
}

// TestAuthNeedsTLS: with AllowPlainAuth false, AUTH is neither offered nor
// accepted before STARTTLS (538, RFC 4954 §6), and is both after it.
func TestAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t), Auth: testAuth,
		AllowPlainAuth: func(net.Addr) bool { return false }}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("STARTTLS")
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("538 5.7.11 encryption required for requested authentication mechanism")
	cl.send("STARTTLS")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.startTLS()
	cl.ehlo("AUTH PLAIN LOGIN")
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("235 2.7.0 authentication successful")
}

// TestAuthNotConfigured: without Config.Auth there is no AUTH at all.
func TestAuthNotConfigured(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, Config{AllowPlainAuth: allowAll}, &fakeBackend{})
	cl := dialReady(t, addr)
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("502 5.5.1 command not implemented")
}

// TestAuthResetByStartTLS: STARTTLS forgets an authentication made before it.
func TestAuthResetByStartTLS(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{TLSConfig: serverTLS(t), Auth: testAuth, AllowPlainAuth: allowAll}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("STARTTLS", "AUTH PLAIN LOGIN")
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("235 2.7.0 authentication successful")
	cl.send("STARTTLS")
	cl.expect("220 2.0.0 Ready to start TLS")
	cl.startTLS()
	cl.ehlo("AUTH PLAIN LOGIN")
	if got := receivedWith(t, cl.sendMail(be, 0)); got != "ESMTPS" {
		t.Errorf("Received with %q after STARTTLS, want ESMTPS", got)
	}
}

// TestReceivedProtocol checks the "with" clause (RFC 3848) without TLS.
func TestReceivedProtocol(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll}, be)
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN")
	if got := receivedWith(t, cl.sendMail(be, 0)); got != "ESMTP" {
		t.Errorf("Received with %q, want ESMTP", got)
	}
	cl.send("AUTH LOGIN " + b64("alice"))
	cl.expect("334 UGFzc3dvcmQ6")
	cl.send(b64("secret"))
	cl.expect("235 2.7.0 authentication successful")
	if got := receivedWith(t, cl.sendMail(be, 1)); got != "ESMTPA" {
		t.Errorf("Received with %q, want ESMTPA", got)
	}
}

// TestAuthNotLogged runs AUTH exchanges with a debug logger and checks that
// no password or AUTH payload reaches the log.
func TestAuthNotLogged(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll, Logger: zap.New(core)}, &fakeBackend{})
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN")
	secrets := []string{plainResp("", "alice", "guess1"), b64("guess2"), b64("alice"), plainResp("", "alice", "secret")}
	cl.send("AUTH PLAIN " + secrets[0])
	cl.expect("535 5.7.8 authentication credentials invalid")
	cl.send("AUTH LOGIN " + secrets[2])
	cl.expect("334 UGFzc3dvcmQ6")
	cl.send(secrets[1])
	cl.expect("535 5.7.8 authentication credentials invalid")
	cl.send("AUTH PLAIN")
	cl.expect("334 ")
	cl.send(secrets[3])
	cl.expect("235 2.7.0 authentication successful")
	cl.send(b64("alice") + "x") // a response out of step is no command, and not logged either
	cl.expect("500 5.5.2 command not recognized")
	cl.send("QUIT")
	cl.expect("221 2.0.0 " + testHost + " closing connection")
	cl.expectClosed()

	secrets = append(secrets, "guess1", "guess2", "secret", b64("alice")+"x")
	sawTranscript := false
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " "))
		}
		if strings.Contains(text, "AUTH PLAIN [redacted]") {
			sawTranscript = true
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log line %q contains %q", text, s)
			}
		}
	}
	if !sawTranscript {
		t.Error("no redacted AUTH line in the debug transcript")
	}
}

func fmtAny(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}
