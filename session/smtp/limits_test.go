package smtp

import (
	"bufio"
	"net"
	"testing"
	"time"

	"gomta/session/limit"
)

// dialFrom connects to addr from the local address ip (127.0.0.x).
func dialFrom(t testing.TB, ip, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

// greetedAfterRelease dials until the server greets instead of refusing:
// a released slot is given back when the server's session goroutine ends,
// a moment after the client closed. Bounded by tries.
func greetedAfterRelease(t *testing.T, ip, addr string) {
	t.Helper()
	for try := 0; try < 200; try++ {
		cl := dialFrom(t, ip, addr)
		line, err := cl.readLine()
		cl.c.Close()
		if err == nil && line == "220 "+testHost+" ESMTP gomta" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the slot was never released")
}

func TestConnLimitTotal(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{MaxConns: 2})
	_, addr := startServer(t, Config{Limiter: lim}, &fakeBackend{})
	a := dialFrom(t, "127.0.0.1", addr)
	a.expect("220 " + testHost + " ESMTP gomta")
	b := dialFrom(t, "127.0.0.2", addr)
	b.expect("220 " + testHost + " ESMTP gomta")
	c := dialFrom(t, "127.0.0.2", addr)
	c.expect("421 4.7.0 too many connections")
	c.expectClosed()
	a.send("QUIT")
	a.expect("221 2.0.0 " + testHost + " closing connection")
	a.expectClosed()
	greetedAfterRelease(t, "127.0.0.1", addr)
}

func TestConnLimitPerIP(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{MaxConnsPerIP: 1})
	_, addr := startServer(t, Config{Limiter: lim}, &fakeBackend{})
	a := dialFrom(t, "127.0.0.1", addr)
	a.expect("220 " + testHost + " ESMTP gomta")
	b := dialFrom(t, "127.0.0.1", addr)
	b.expect("421 4.7.0 too many connections")
	b.expectClosed()
	c := dialFrom(t, "127.0.0.2", addr) // another address has its own slot
	c.expect("220 " + testHost + " ESMTP gomta")
	a.c.Close()
	greetedAfterRelease(t, "127.0.0.1", addr)
}

// TestAuthLockout: after AuthFailures failures the next AUTH (even with the
// right password), on this or a new connection, gets 421 and a close.
func TestAuthLockout(t *testing.T) {
	t.Parallel()
	lim := limit.New(limit.Config{AuthFailures: 2, AuthDelay: time.Millisecond})
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll, Limiter: lim}, &fakeBackend{})
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN")
	for range 2 {
		cl.send("AUTH PLAIN " + plainResp("", "alice", "guess"))
		cl.expect("535 5.7.8 authentication credentials invalid")
	}
	cl.send("AUTH PLAIN " + plainResp("", "alice", "secret"))
	cl.expect("421 4.7.0 too many failed logins")
	cl.expectClosed()

	cl = dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("AUTH PLAIN LOGIN")
	cl.send("AUTH LOGIN", b64("alice"), b64("secret"))
	cl.expect("334 VXNlcm5hbWU6")
	cl.expect("334 UGFzc3dvcmQ6")
	cl.expect("421 4.7.0 too many failed logins")
	cl.expectClosed()
}

// TestSessionTimeout: a session that outlives SessionTimeout is closed with
// 421 4.4.2 although each command came within CmdTimeout.
func TestSessionTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, Config{SessionTimeout: 200 * time.Millisecond, CmdTimeout: time.Minute}, &fakeBackend{})
	cl := dialReady(t, addr)
	for range 100 { // bounded: the session ends long before
		cl.send("NOOP")
		line, err := cl.readLine()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if line == "421 4.4.2 "+testHost+" session time limit exceeded, closing connection" {
			cl.expectClosed()
			return
		}
		if line != "250 2.0.0 OK" {
			t.Fatalf("got %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the session did not time out")
}

// TestSessionTimeoutInData: the session's end bounds the DATA phase too.
func TestSessionTimeoutInData(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	_, addr := startServer(t, Config{SessionTimeout: time.Second}, be) // MAIL, RCPT and DATA fit well within it
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.send("Subject: slow") // and nothing more
	cl.expect("421 4.4.2 " + testHost + " session time limit exceeded, closing connection")
	cl.expectClosed()
	if c, a := be.counts(); c != 0 || a != 1 {
		t.Errorf("committed %d aborted %d, want 0 and 1", c, a)
	}
}
