package pop3_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/limit"
	"gomta/session/pop3"
)

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

func TestAuthPlain(t *testing.T) {
	t.Parallel()
	maildrop := "+OK maildrop has 2 messages (" + itoa(len(msg1)+len(msg2)) + " octets)"
	authFailed := "-ERR [AUTH] invalid user name or password"
	type step struct{ send, want string }
	for _, tc := range []struct {
		name  string
		steps []step
		in    bool // logged in at the end
		left  int  // messages then
	}{
		{"initial response", []step{{"AUTH PLAIN " + plain("", "alice", "secret"), maildrop}}, true, 2},
		{"lower-case mechanism", []step{{"auth plain " + plain("", "alice", "secret"), maildrop}}, true, 2},
		{"continuation", []step{{"AUTH PLAIN", "+ "}, {plain("", "alice", "secret"), maildrop}}, true, 2},
		{"authzid equal to user", []step{{"AUTH PLAIN " + plain("alice", "alice", "secret"), maildrop}}, true, 2},
		{"password with spaces", []step{{"AUTH PLAIN " + plain("", "bob", "hunter 2"), "+OK maildrop has 0 messages (0 octets)"}}, true, 0},
		{"wrong password", []step{
			{"AUTH PLAIN " + plain("", "alice", "wrong"), authFailed},
			{"AUTH PLAIN", "+ "}, {plain("", "alice", "Secret"), authFailed},
			{"AUTH PLAIN " + plain("", "nobody", "secret"), authFailed},
		}, false, 0},
		{"bad base64", []step{
			{"AUTH PLAIN !!!!", "-ERR invalid base64 in authentication response"},
			{"AUTH PLAIN", "+ "}, {"AGFsaWNlAHNlY3JldA", "-ERR invalid base64 in authentication response"},
		}, false, 0},
		{"cancel", []step{{"AUTH PLAIN", "+ "}, {"*", "-ERR authentication cancelled"}}, false, 0},
		{"cancel as initial response", []step{{"AUTH PLAIN *", "-ERR authentication cancelled"}}, false, 0},
		{"authzid mismatch", []step{
			{"AUTH PLAIN " + plain("bob", "alice", "secret"), "-ERR [AUTH] authorization identity must be empty or the user"},
		}, false, 0},
		{"malformed", []step{
			{"AUTH PLAIN =", "-ERR malformed PLAIN response"},
			{"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("alice\x00secret")), "-ERR malformed PLAIN response"},
			{"AUTH PLAIN " + plain("", "", "secret"), "-ERR malformed PLAIN response"},
			{"AUTH PLAIN " + plain("", "alice", ""), "-ERR malformed PLAIN response"},
			{"AUTH PLAIN", "+ "}, {"", "-ERR malformed PLAIN response"},
		}, false, 0},
		{"arguments", []step{
			{"AUTH", "-ERR missing authentication mechanism"},
			{"AUTH LOGIN", "-ERR unsupported authentication mechanism"},
			{"AUTH PLAIN a b", "-ERR too many arguments"},
		}, false, 0},
		{"long continuation line", []step{
			{"AUTH PLAIN", "+ "}, {strings.Repeat("A", 2000), "-ERR line too long"},
			{"AUTH PLAIN", "+ "}, {plain("", "alice", strings.Repeat("x", 250)), authFailed}, // longer than a command line
		}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newBackend()
			ts := start(t, be, pop3.Config{})
			c := dial(t, ts.addr)
			for _, s := range tc.steps {
				c.cmd(s.send, s.want)
			}
			if tc.in {
				c.cmd("AUTH PLAIN "+plain("", "alice", "secret"), "-ERR already logged in")
				c.cmd("NOOP", "+OK")
			} else {
				c.cmd("NOOP", "-ERR not logged in")
			}
			if tc.in {
				c.cmd("QUIT", "+OK "+host+" signing off ("+itoa(tc.left)+" messages left)")
			} else {
				c.cmd("QUIT", "+OK "+host+" signing off")
			}
		})
	}
}

// TestSecretsNotLogged: no log line carries a password or an AUTH payload.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	ts := start(t, newBackend(), pop3.Config{Logger: zap.New(core), MaxErrors: 100})
	c := dial(t, ts.addr)
	secrets := []string{"wrongpass1", "wrongpass2", "secret"}
	payloads := []string{plain("", "alice", "wrongpass1"), plain("", "alice", "secret")}
	c.cmd("AUTH PLAIN "+payloads[0], "-ERR [AUTH] invalid user name or password")
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS wrongpass2", "-ERR [AUTH] invalid user name or password")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(payloads[1], "+OK maildrop has 2 messages ("+itoa(len(msg1)+len(msg2))+" octets)")
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()
	shutdownNow(t, ts)
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range append(secrets, payloads...) {
			if strings.Contains(line, s) {
				t.Errorf("log line carries a secret: %s", line)
			}
		}
	}
}

func TestLockoutPerIP(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{AuthFailures: 3, AuthDelay: time.Millisecond})
	ts := start(t, newBackend(), pop3.Config{Limiter: lim})
	authFailed := "-ERR [AUTH] invalid user name or password"
	locked := "-ERR [AUTH] too many failed logins, try later"

	c := dialRaw(t, ts.addr, "127.0.0.1")
	c.expect("+OK " + host + " POP3 server ready")
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS x1", authFailed)
	c.cmd("AUTH PLAIN "+plain("", "bob", "x2"), authFailed)
	c.cmd("USER carol", "+OK send PASS")
	c.cmd("PASS x3", authFailed)
	// Locked out: even the right password of an account not yet tried.
	c.cmd("USER bob", "+OK send PASS")
	c.cmd("PASS hunter 2", locked)
	c.expectEOF()

	c = dialRaw(t, ts.addr, "127.0.0.1")
	c.expect("+OK " + host + " POP3 server ready")
	c.cmd("AUTH PLAIN "+plain("", "alice", "secret"), locked)
	c.expectEOF()

	// Another address is not affected.
	c = dialRaw(t, ts.addr, "127.0.0.2")
	c.expect("+OK " + host + " POP3 server ready")
	c.login("bob", "hunter 2", 0, 0)
}

func TestLockoutPerAccount(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{AuthFailures: 3})
	ts := start(t, newBackend(), pop3.Config{Limiter: lim})
	authFailed := "-ERR [AUTH] invalid user name or password"
	locked := "-ERR [AUTH] too many failed logins, try later"

	for i, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		c := dialRaw(t, ts.addr, ip)
		c.expect("+OK " + host + " POP3 server ready")
		if i%2 == 0 {
			c.cmd("USER alice", "+OK send PASS")
			c.cmd("PASS guess"+itoa(i), authFailed)
		} else {
			c.cmd("AUTH PLAIN "+plain("", "alice", "guess"+itoa(i)), authFailed)
		}
		c.cmd("QUIT", "+OK "+host+" signing off")
	}
	// alice is locked out from a fresh address, with the right password.
	c := dialRaw(t, ts.addr, "127.0.0.4")
	c.expect("+OK " + host + " POP3 server ready")
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS secret", locked)
	c.expectEOF()
	// bob is not.
	c = dialRaw(t, ts.addr, "127.0.0.4")
	c.expect("+OK " + host + " POP3 server ready")
	c.login("bob", "hunter 2", 0, 0)
}

func TestConnLimitTotal(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{Limiter: limit.New(limit.Config{MaxConns: 2})})
	refused := "-ERR [SYS/TEMP] too many connections"
	a := dialRaw(t, ts.addr, "127.0.0.1")
	a.expect("+OK " + host + " POP3 server ready")
	b := dialRaw(t, ts.addr, "127.0.0.2")
	b.expect("+OK " + host + " POP3 server ready")
	for _, ip := range []string{"127.0.0.1", "127.0.0.3"} {
		c := dialRaw(t, ts.addr, ip)
		c.expect(refused)
		c.expectEOF()
	}
	a.cmd("QUIT", "+OK "+host+" signing off")
	a.expectEOF()
	// The slot comes back once the server has seen the session end.
	waitAccepted(t, ts.addr, "127.0.0.3")
	b.cmd("NOOP", "-ERR not logged in")
}

func TestConnLimitPerIP(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{Limiter: limit.New(limit.Config{MaxConnsPerIP: 1})})
	a := dialRaw(t, ts.addr, "127.0.0.1")
	a.expect("+OK " + host + " POP3 server ready")
	c := dialRaw(t, ts.addr, "127.0.0.1")
	c.expect("-ERR [SYS/TEMP] too many connections")
	c.expectEOF()
	b := dialRaw(t, ts.addr, "127.0.0.2")
	b.expect("+OK " + host + " POP3 server ready")
	b.loginAlice()
	a.cmd("QUIT", "+OK "+host+" signing off")
	a.expectEOF()
	waitAccepted(t, ts.addr, "127.0.0.1")
}

// waitAccepted dials from ip until the server greets instead of refusing;
// bounded.
func waitAccepted(t *testing.T, addr, ip string) {
	t.Helper()
	for range 1000 {
		c := dialRaw(t, addr, ip)
		line, err := c.r.ReadString('\n')
		c.c.Close()
		if err != nil {
			t.Fatalf("no greeting or refusal: %v", err)
		}
		if strings.HasPrefix(line, "+OK ") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connections from %s still refused", ip)
}
