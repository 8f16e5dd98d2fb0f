package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/smtp"
)

const (
	loadUser = "load@example.test"
	loadPass = "s3cret:with:colons"
)

// securedBackend is a sinkBackend that takes mail only from a session under
// TLS and authenticated as loadUser, so that a 250 proves both happened.
type securedBackend struct{ sinkBackend }

var errNeedAuth = &smtp.Reply{Code: 530, Enhanced: "5.7.0", Text: "authentication and TLS required"}

func (b *securedBackend) Mail(_ context.Context, c *smtp.Peer, _ string) error {
	if !c.TLS || c.AuthUser != loadUser {
		return errNeedAuth
	}
	return nil
}

// startSecureSMTP runs a real gomta SMTP server offering STARTTLS, and AUTH
// under TLS only (the server's default).
func startSecureSMTP(t testing.TB, be smtp.Backend) string {
	t.Helper()
	srvTLS, _ := mtatest.TLS(t, "")
	addr, _ := startSMTPConfig(t, smtp.Config{
		TLSConfig: srvTLS,
		Auth:      func(_ context.Context, user, pass string) bool { return user == loadUser && pass == loadPass },
	}, be)
	return addr
}

func TestSMTPTLSAndAuth(t *testing.T) {
	t.Parallel()
	be := &securedBackend{}
	addr := startSecureSMTP(t, be)
	base := []string{"smtp", "-addr", addr, "-c", "3", "-n", "12", "-reuse", "2", "-to", "user%d@example.test", "-to-n", "3"}
	for _, pipelining := range []bool{false, true} {
		args := append(append([]string{}, base...), "-tls", "-auth", loadUser+":"+loadPass)
		if pipelining {
			args = append(args, "-pipelining")
		}
		var rep report
		code, stderr := runJSON(t, &rep, args...)
		if code != exitOK || rep.OK != 12 || rep.Sessions < 6 || len(rep.Errors) != 0 {
			t.Fatalf("pipelining=%v: exit %d, report %+v; %s", pipelining, code, rep, stderr)
		}
		if !containsAll(stepNames(rep.Latency), "tls", "auth", "mail", "message") {
			t.Errorf("steps %v lack tls/auth", stepNames(rep.Latency))
		}
	}
	if commits, _, _ := be.counts(); commits != 24 {
		t.Errorf("server committed %d messages, want 24", commits)
	}

	for _, tc := range []struct {
		name string
		args []string
		key  string // the error group every message fails with
	}{
		// The server offers AUTH only under TLS: Auth finds no mechanism.
		{"auth without tls", []string{"-auth", loadUser + ":" + loadPass}, "no supported AUTH mechanism"},
		{"wrong password", []string{"-tls", "-auth", loadUser + ":nope"}, "535"},
		// TLS alone is not enough for this backend.
		{"tls without auth", []string{"-tls"}, "530"},
	} {
		var rep report
		code, stderr := runJSON(t, &rep, append(append([]string{}, base...), tc.args...)...)
		if code != exitErrors || rep.OK != 0 || rep.Failed != 12 || len(rep.Errors) != 1 {
			t.Errorf("%s: exit %d, report %+v; %s", tc.name, code, rep, stderr)
			continue
		}
		if e := rep.Errors[0]; !strings.Contains(e.Key+" "+e.Sample, tc.key) {
			t.Errorf("%s: error %+v, want %q", tc.name, e, tc.key)
		}
	}
	if commits, _, _ := be.counts(); commits != 24 {
		t.Errorf("refused runs committed: %d, want still 24", commits)
	}
}

func TestSMTPTLSNotOffered(t *testing.T) {
	t.Parallel()
	addr, _ := startSMTP(t, &sinkBackend{})
	var rep report
	code, stderr := runJSON(t, &rep, "smtp", "-addr", addr, "-c", "1", "-n", "2", "-to", "a@example.test", "-tls")
	if code != exitErrors || rep.OK != 0 || rep.Failed != 2 || len(rep.Errors) != 1 ||
		!strings.Contains(rep.Errors[0].Key+" "+rep.Errors[0].Sample, "STARTTLS") {
		t.Errorf("exit %d, report %+v; %s", code, rep, stderr)
	}
}

func TestPOP3TLSAndAuth(t *testing.T) {
	t.Parallel()
	be := pop3test.New()
	for u := 1; u <= 2; u++ {
		be.AddUser(fmt.Sprintf("user%d@example.test", u), loadPass)
		be.Add(fmt.Sprintf("user%d@example.test", u), msgWithID(fmt.Sprintf("<p.%d@test>", u)))
	}
	// No login before STLS, from anywhere (RFC 2595 §2's LOGINDISABLED case).
	srvTLS, _ := mtatest.TLS(t, "")
	addr := pop3test.Start(t, pop3.Config{TLSConfig: srvTLS, AllowPlainAuth: func(net.Addr) bool { return false }}, be)
	base := []string{"pop3", "-addr", addr, "-c", "1", "-n", "6", "-user", "user%d@example.test", "-pass", loadPass, "-users", "2"}
	for _, tc := range []struct {
		args  []string
		steps []string
	}{
		{[]string{"-tls", "-auth"}, []string{"STLS", "tls", "AUTH", "RETR"}},
		{[]string{"-tls"}, []string{"STLS", "tls", "USER", "PASS", "RETR"}},
	} {
		var rep report
		code, stderr := runJSON(t, &rep, append(append([]string{}, base...), tc.args...)...)
		if code != exitOK || rep.OK != 6 || rep.Retrieved != 6 || len(rep.Errors) != 0 {
			t.Errorf("%v: exit %d, report %+v; %s", tc.args, code, rep, stderr)
		}
		if !containsAll(stepNames(rep.Latency), tc.steps...) {
			t.Errorf("%v: steps %v, want %v", tc.args, stepNames(rep.Latency), tc.steps)
		}
	}
	// Without -tls the server refuses the login: every session fails.
	var rep report
	code, _ := runJSON(t, &rep, append(base, "-auth")...)
	if code != exitErrors || rep.OK != 0 || rep.Failed != 6 {
		t.Errorf("plain -auth: exit %d, report %+v", code, rep)
	}
}

func TestParseAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, user, pass string }{
		{"u:p", "u", "p"},
		{"u@d:p:q", "u@d", "p:q"},
		{"u:", "u", ""},
	} {
		u, p, err := parseAuth(tc.in)
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("parseAuth(%q) = %q, %q, %v", tc.in, u, p, err)
		}
	}
	for _, bad := range []string{"", "u", ":p"} {
		if _, _, err := parseAuth(bad); err == nil {
			t.Errorf("parseAuth(%q) accepted", bad)
		}
	}
}
