package pop3_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/pop3"
)

var capaLines = []string{"+OK capability list follows",
	"TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "UTF8 USER", "IMPLEMENTATION gomta", "."}

func TestAuthorizationState(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{MaxErrors: 100})
	c := dial(t, ts.addr)

	for _, step := range []struct{ send, want string }{
		{"STAT", "-ERR not logged in"},
		{"LIST", "-ERR not logged in"},
		{"RETR 1", "-ERR not logged in"},
		{"DELE 1", "-ERR not logged in"},
		{"NOOP", "-ERR not logged in"},
		{"RSET", "-ERR not logged in"},
		{"TOP 1 1", "-ERR not logged in"},
		{"UIDL", "-ERR not logged in"},
		{"PASS secret", "-ERR USER first"},
		{"USER", "-ERR missing user name"},
		{"USER a b", "-ERR too many arguments"},
		{"FOO bar", "-ERR unknown command"},
		{"", "-ERR invalid characters in command"},
		{"US\x00ER alice", "-ERR invalid characters in command"},
		{"USER alice", "+OK send PASS"},
		{"PASS", "-ERR missing password"},
		{"PASS wrong", "-ERR [AUTH] invalid user name or password"},
		{"PASS secret", "-ERR USER first"}, // one PASS per USER
		{"USER nobody", "+OK send PASS"},   // same reply for unknown users
		{"PASS secret", "-ERR [AUTH] invalid user name or password"},
		{"USER ALICE", "+OK send PASS"}, // arguments are case-sensitive
		{"PASS secret", "-ERR [AUTH] invalid user name or password"},
		{"USER alice", "+OK send PASS"},
		{"PASS Secret", "-ERR [AUTH] invalid user name or password"},
	} {
		c.cmd(step.send, step.want)
	}
	c.cmd("CAPA", capaLines...)
	c.cmd("QUIT", "+OK "+host+" signing off")
	c.expectEOF()
	if be.Locked("alice") {
		t.Error("alice locked after failed logins")
	}
}

func TestTransactionState(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{MaxErrors: 100})
	c := dial(t, ts.addr)
	c.loginAlice()
	n1, n2 := itoa(len(msg1)), itoa(len(msg2))
	total := itoa(len(msg1) + len(msg2))

	c.cmd("STAT", "+OK 2 "+total)
	c.cmd("LIST", "+OK 2 messages ("+total+" octets)", "1 "+n1, "2 "+n2, ".")
	c.cmd("LIST 2", "+OK 2 "+n2)
	c.cmd("LIST 3", "-ERR no such message")
	c.cmd("LIST 0", "-ERR no such message")
	c.cmd("LIST x", "-ERR invalid message number")
	c.cmd("LIST -1", "-ERR invalid message number")
	c.cmd("LIST +1", "-ERR invalid message number")
	c.cmd("LIST 99999999999", "-ERR invalid message number")
	c.cmd("LIST 1 2", "-ERR too many arguments")
	c.cmd("UIDL", "+OK unique-id listing follows", "1 uid-0001", "2 uid-0002", ".")
	c.cmd("UIDL 2", "+OK 2 uid-0002")
	c.cmd("UIDL 3", "-ERR no such message")
	c.cmd("RETR 1", append([]string{"+OK " + n1 + " octets"}, append(stuffed(msg1), ".")...)...)
	c.cmd("RETR 2", append([]string{"+OK " + n2 + " octets"}, append(stuffed(msg2), ".")...)...)
	c.cmd("RETR", "-ERR missing message number")
	c.cmd("RETR 1 2", "-ERR too many arguments")
	c.cmd("RETR 5", "-ERR no such message")
	c.cmd("TOP 1 0", "+OK top of message follows", "From: a@example.org", "Subject: one", "", ".")
	c.cmd("TOP 1 2", "+OK top of message follows", "From: a@example.org", "Subject: one", "", "Hello", "..dot line", ".")
	c.cmd("TOP 2 1", "+OK top of message follows", "Subject: two", "", "line1", ".")
	c.cmd("TOP 2 99", append([]string{"+OK top of message follows"}, append(stuffed(msg2), ".")...)...)
	c.cmd("TOP", "-ERR missing message number")
	c.cmd("TOP 1", "-ERR missing line count")
	c.cmd("TOP 1 x", "-ERR invalid line count")
	c.cmd("TOP 1 -1", "-ERR invalid line count")
	c.cmd("TOP 3 1", "-ERR no such message")
	c.cmd("TOP 1 1 1", "-ERR too many arguments")
	c.cmd("NOOP", "+OK")
	c.cmd("NOOP x", "-ERR too many arguments")
	c.cmd("STAT x", "-ERR too many arguments")
	c.cmd("USER alice", "-ERR already logged in")
	c.cmd("PASS secret", "-ERR already logged in")
	c.cmd("XTND", "-ERR unknown command")
	c.cmd("CAPA", capaLines...)

	c.cmd("DELE", "-ERR missing message number")
	c.cmd("DELE 3", "-ERR no such message")
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("DELE 1", "-ERR message 1 already deleted")
	c.cmd("RETR 1", "-ERR message 1 already deleted")
	c.cmd("TOP 1 0", "-ERR message 1 already deleted")
	c.cmd("LIST 1", "-ERR message 1 already deleted")
	c.cmd("UIDL 1", "-ERR message 1 already deleted")
	c.cmd("STAT", "+OK 1 "+n2)
	c.cmd("LIST", "+OK 1 messages ("+n2+" octets)", "2 "+n2, ".")
	c.cmd("UIDL", "+OK unique-id listing follows", "2 uid-0002", ".")
	c.cmd("RSET", "+OK maildrop has 2 messages ("+total+" octets)")
	c.cmd("STAT", "+OK 2 "+total)
	c.cmd("RETR 1", append([]string{"+OK " + n1 + " octets"}, append(stuffed(msg1), ".")...)...)
	c.cmd("QUIT x", "-ERR too many arguments")
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()

	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("after RSET and QUIT: %d messages, want 2", len(got))
	}
}

func TestVerbsCaseInsensitive(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	c.cmd("user alice", "+OK send PASS")
	c.cmd("pAsS secret", "+OK maildrop has 2 messages ("+itoa(len(msg1)+len(msg2))+" octets)")
	c.cmd("stat", "+OK 2 "+itoa(len(msg1)+len(msg2)))
	c.cmd("Uidl 1", "+OK 1 uid-0001")
	c.cmd("quit", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()
}

func TestPasswordWithSpace(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	c.login("bob", "hunter 2", 0, 0)
	c.cmd("STAT", "+OK 0 0")
	c.cmd("LIST", "+OK 0 messages (0 octets)", ".")
	c.cmd("UIDL", "+OK unique-id listing follows", ".")
	c.cmd("RETR 1", "-ERR no such message")
	c.cmd("QUIT", "+OK "+host+" signing off (0 messages left)")
}

func TestQuitCommitsDeletions(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("QUIT", "+OK "+host+" signing off (1 messages left)")
	c.expectEOF()

	got := be.Messages("alice")
	if len(got) != 1 || string(got[0]) != msg2 {
		t.Fatalf("after QUIT: %q, want only msg2", got)
	}
	if be.Closes("alice") != 0 {
		t.Errorf("Close called after a successful Commit")
	}
	// A new session sees the new numbering.
	c = dial(t, ts.addr)
	c.login("alice", "secret", 1, len(msg2))
	c.cmd("UIDL", "+OK unique-id listing follows", "1 uid-0002", ".")
	c.cmd("QUIT", "+OK "+host+" signing off (1 messages left)")
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("DELE 2", "+OK message 2 deleted")
	c.c.Close()
	waitReleased(t, be, "alice")
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("dropped connection removed messages: %d left, want 2", len(got))
	}
	if n := be.Closes("alice"); n != 1 {
		t.Errorf("Maildrop.Close called %d times, want 1", n)
	}
}

func TestInUse(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	first := dial(t, ts.addr)
	first.loginAlice()

	second := dial(t, ts.addr)
	second.cmd("USER alice", "+OK send PASS")
	second.cmd("PASS secret", "-ERR [IN-USE] mailbox already locked")
	second.cmd("STAT", "-ERR not logged in") // still in AUTHORIZATION

	first.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	first.expectEOF()
	second.loginAlice() // the lock was released by QUIT
	second.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
}

func TestCommitFailure(t *testing.T) {
	t.Parallel()
	be := newBackend()
	be.CommitErr = errors.New("disk on fire")
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("QUIT", "-ERR [SYS/TEMP] could not remove deleted messages, none removed")
	c.expectEOF()
	waitReleased(t, be, "alice")
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("failed commit removed messages: %d left", len(got))
	}
}

func TestBackendError(t *testing.T) {
	t.Parallel()
	be := newBackend()
	be.OpenHook = func(ctx context.Context, user string, i int) error {
		if i == 1 {
			return errors.New("maildir unreadable")
		}
		return nil
	}
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("RETR 2", "-ERR [SYS/TEMP] temporary failure, try later")
	c.cmd("TOP 2 0", "-ERR [SYS/TEMP] temporary failure, try later")
	c.cmd("STAT", "+OK 2 "+itoa(len(msg1)+len(msg2)))
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	// 253 octets + CRLF = 255: the longest line allowed (RFC 2449 §4).
	c.cmd("USER "+strings.Repeat("u", 248), "+OK send PASS")
	c.cmd("USER "+strings.Repeat("u", 249), "-ERR line too long")
	c.cmd("USER "+strings.Repeat("u", 100000), "-ERR line too long")
	c.loginAlice() // still in step
	c.cmd("NOOP "+strings.Repeat(" ", 300), "-ERR line too long")
	c.cmd("NOOP", "+OK")
}

func TestBareLF(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	c.write("USER alice\nPASS secret\nSTAT\n")
	c.expect("+OK send PASS", "+OK maildrop has 2 messages ("+itoa(len(msg1)+len(msg2))+" octets)",
		"+OK 2 "+itoa(len(msg1)+len(msg2)))
}

func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{MaxErrors: 3})
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("BOGUS", "-ERR unknown command")
	c.cmd("RETR 9", "-ERR no such message")
	c.cmd("USER x", "-ERR already logged in", "-ERR too many errors")
	c.expectEOF()
	waitReleased(t, be, "alice")
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("close after errors removed messages: %d left", len(got))
	}
}

func TestDefaultMaxErrors(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	for range pop3.DefaultMaxErrors - 1 {
		c.cmd("PASS x", "-ERR USER first")
	}
	c.cmd("PASS x", "-ERR USER first", "-ERR too many errors")
	c.expectEOF()
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	total := itoa(len(msg1) + len(msg2))
	c.write("CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 2\r\nDELE 1\r\nBOGUS\r\nNOOP\r\nQUIT\r\n")
	want := slices.Concat(capaLines, []string{
		"+OK send PASS",
		"+OK maildrop has 2 messages (" + total + " octets)",
		"+OK 2 " + total,
		"+OK 2 messages (" + total + " octets)", "1 " + itoa(len(msg1)), "2 " + itoa(len(msg2)), ".",
		"+OK " + itoa(len(msg2)) + " octets"}, stuffed(msg2), []string{".",
		"+OK message 1 deleted",
		"-ERR unknown command",
		"+OK",
		"+OK " + host + " signing off (1 messages left)",
	})
	c.expect(want...)
	c.expectEOF()
	if got := be.Messages("alice"); len(got) != 1 {
		t.Fatalf("pipelined DELE+QUIT: %d left, want 1", len(got))
	}
}

// TestRetrExactOctets reads RETR raw and checks that after un-stuffing the
// body is the stored message, octet for octet, and as long as LIST said.
func TestRetrExactOctets(t *testing.T) {
	t.Parallel()
	be := newBackend()
	var big bytes.Buffer
	big.WriteString("Subject: big\r\n\r\n")
	for i := range 20000 {
		if i%7 == 0 {
			big.WriteString(".")
		}
		big.WriteString(strings.Repeat("x", i%300))
		big.WriteString("\r\n")
	}
	big.WriteString(strings.Repeat("y", 70000) + "\r\n") // longer than any buffer
	be.AddUser("carol", "pw")
	be.Add("carol", big.Bytes())
	ts := start(t, be, pop3.Config{})
	c := dial(t, ts.addr)
	c.login("carol", "pw", 1, big.Len())
	c.cmd("LIST 1", "+OK 1 "+itoa(big.Len()))
	c.cmd("RETR 1", "+OK "+itoa(big.Len())+" octets")
	var got bytes.Buffer
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ".\r\n" {
			break
		}
		got.WriteString(strings.TrimPrefix(line, "."))
	}
	if !bytes.Equal(got.Bytes(), big.Bytes()) {
		t.Fatalf("RETR body differs: got %d octets, want %d", got.Len(), big.Len())
	}
	c.cmd("NOOP", "+OK")
}

func TestHTTPRequestClosed(t *testing.T) {
	t.Parallel()
	ts := start(t, newBackend(), pop3.Config{})
	c := dial(t, ts.addr)
	c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expectEOF()
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	be := newBackend()
	ts := start(t, be, pop3.Config{IdleTimeout: time.Second}) // long enough for login and DELE on a loaded machine
	c := dial(t, ts.addr)
	c.loginAlice()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.expect("-ERR [SYS/TEMP] idle timeout, closing")
	c.expectEOF()
	waitReleased(t, be, "alice")
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("autologout removed messages: %d left", len(got))
	}
}

type panicBackend struct{ pop3.Backend }

func (panicBackend) Login(context.Context, string, string) error { panic("boom") }

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	ts := start(t, panicBackend{newBackend()}, pop3.Config{Logger: zap.NewNop()})
	for range 2 { // the server survives
		c := dial(t, ts.addr)
		c.cmd("USER alice", "+OK send PASS")
		c.cmd("PASS secret", "-ERR [SYS/TEMP] internal error")
		c.expectEOF()
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	ts := start(t, newBackend(), pop3.Config{Logger: zap.New(core)})
	c := dial(t, ts.addr)
	c.cmd("USER alice", "+OK send PASS")
	c.cmd("PASS wrongpassword", "-ERR [AUTH] invalid user name or password")
	c.loginAlice()
	c.cmd("RETR 1", append([]string{"+OK " + itoa(len(msg1)) + " octets"}, append(stuffed(msg1), ".")...)...)
	c.cmd("QUIT", "+OK "+host+" signing off (2 messages left)")
	c.expectEOF()
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil { // waits for the session to end
		t.Fatal(err)
	}
	ts.waitServe(t)

	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
		all := e.Message
		for k, v := range e.ContextMap() {
			all += " " + k + "=" + strings.ReplaceAll(strings.TrimSpace(toString(v)), "\n", " ")
		}
		for _, secret := range []string{"secret", "wrongpassword", "Hello"} {
			if strings.Contains(all, secret) {
				t.Errorf("log line leaks %q: %s", secret, all)
			}
		}
		if e.ContextMap()["proto"] != "pop3" || e.ContextMap()["session_id"] == nil || e.ContextMap()["remote"] == nil {
			t.Errorf("log line without proto/session_id/remote: %v", e.ContextMap())
		}
	}
	for _, want := range []string{"session start", "login failed", "login", "session end"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("no %q log line in %q", want, msgs)
		}
	}
	login := logs.FilterMessage("login").All()
	if len(login) != 1 || login[0].ContextMap()["user"] != "alice" {
		t.Errorf("login lines: %v", login)
	}
	end := logs.FilterMessage("session end").All()
	if len(end) != 1 || end[0].ContextMap()["retrieved"] != int64(1) {
		t.Errorf("session end lines: %v", end)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}
