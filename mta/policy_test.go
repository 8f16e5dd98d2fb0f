package mta

import (
	"context"
	"errors"
	"net"
	"testing"

	"gomta/mta/config"
	"gomta/session/pop3"
	"gomta/session/reply"
	"gomta/session/smtp"
)

func policyHost(t *testing.T) *Host {
	t.Helper()
	cfg, err := config.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server("exmail.qq.com")
	h := &Host{Name: s.Name}
	h.live.Store(newHostConfig(cfg, s))
	return h
}

func code(err error) int {
	if err == nil {
		return 250
	}
	var r *reply.Reply
	if errors.As(err, &r) {
		return r.Code
	}
	return -1
}

// TestRelayPolicy is ARCHITECTURE.md's "Who may send what" as a table.
func TestRelayPolicy(t *testing.T) {
	b := smtpBackend{policyHost(t)}
	trusted := &smtp.Peer{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Trusted: true}
	untrusted := &smtp.Peer{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}}
	authed := &smtp.Peer{Remote: untrusted.Remote, AuthUser: "usr1@mail.sustech.edu.cn"}
	const (
		local   = "usr1@mail.sustech.edu.cn"
		local2  = "usr2@mail.sustech.edu.cn"
		noLocal = "ghost@mail.sustech.edu.cn"
		remote  = "usr@gmail.com"
		foreign = "someone@example.org"
	)
	mail := []struct {
		name string
		c    *smtp.Peer
		from string
		want int
	}{
		{"trusted local account", trusted, local, 250},
		{"local account, case differs", trusted, "USR1@Mail.Sustech.Edu.Cn", 250},
		{"trusted unknown local sender", trusted, noLocal, 550},
		{"untrusted unknown local sender", untrusted, noLocal, 550},
		{"untrusted local sender not owned", untrusted, local, 553},
		{"untrusted foreign sender", untrusted, foreign, 250},
		{"null sender", untrusted, "", 250},
		{"authenticated as itself", authed, local, 250},
		{"authenticated as someone else", authed, local2, 553},
	}
	for _, c := range mail {
		if got := code(b.Mail(context.Background(), c.c, c.from)); got != c.want {
			t.Errorf("MAIL %s: %d, want %d", c.name, got, c.want)
		}
	}
	rcpt := []struct {
		name     string
		c        *smtp.Peer
		from, to string
		want     int
	}{
		{"trusted local sender to remote", trusted, local, remote, 250},
		{"trusted local sender to local", trusted, local, local2, 250},
		{"trusted foreign sender to remote", trusted, foreign, remote, 554},
		{"untrusted foreign sender to local", untrusted, foreign, local2, 250},
		{"untrusted foreign sender to unknown local", untrusted, foreign, noLocal, 550},
		{"untrusted foreign sender to remote", untrusted, foreign, remote, 554},
		{"null sender to local", untrusted, "", local, 250},
		{"null sender to remote", trusted, "", remote, 554},
		{"authenticated to remote", authed, local, remote, 250},
		{"authenticated null sender to remote", authed, "", remote, 250},
	}
	for _, c := range rcpt {
		if got := code(b.Rcpt(context.Background(), c.c, c.from, c.to)); got != c.want {
			t.Errorf("RCPT %s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestPOP3Login(t *testing.T) {
	b := pop3Backend{policyHost(t)}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"usr1@mail.sustech.edu.cn", "pass1", true},
		{"usr1@mail.sustech.edu.cn", "pass2", false},
		{"usr1@mail.sustech.edu.cn", "", false},
		{"ghost@mail.sustech.edu.cn", "pass1", false},
		{"usr@gmail.com", "pass", false}, // an account of the other host
	} {
		err := b.Login(context.Background(), c.user, c.pass)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, pop3.ErrAuth)) {
			t.Errorf("Login(%s, %q) = %v", c.user, c.pass, err)
		}
	}
}
