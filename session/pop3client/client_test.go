package pop3client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/pop3client"
)

const (
	host = "pop.test"
	msg1 = "From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n..two dots\r\n.\r\nbye\r\n"
	msg2 = "Subject: two\r\n\r\nline1\r\nline2\r\nline3\r\n"
)

const ioWait = 10 * time.Second

func newBackend() *pop3test.Backend {
	be := pop3test.New()
	be.AddUser("alice", "secret")
	be.Add("alice", []byte(msg1)) // uid-0001
	be.Add("alice", []byte(msg2)) // uid-0002
	return be
}

// start runs a real pop3.Server on loopback.
func start(t *testing.T, be pop3.Backend) string {
	t.Helper()
	return pop3test.Start(t, pop3.Config{Hostname: host}, be)
}

func dial(t *testing.T, addr string, opt pop3client.Options) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	c, err := pop3client.Dial(ctx, addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantErr checks that err is a *pop3client.Error with exactly text.
func wantErr(t *testing.T, err error, text string) *pop3client.Error {
	t.Helper()
	var pe *pop3client.Error
	if !errors.As(err, &pe) || pe.Text != text {
		t.Fatalf("error = %v, want -ERR %s", err, text)
	}
	return pe
}

func TestClientAgainstServer(t *testing.T) {
	t.Parallel()
	be := newBackend()
	addr := start(t, be)
	var steps []string
	c := dial(t, addr, pop3client.Options{Trace: func(step string, d time.Duration) { steps = append(steps, step) }})

	if got := c.Greeting(); got != host+" POP3 server ready" {
		t.Errorf("Greeting = %q", got)
	}
	capa, err := c.Capa()
	if err != nil || !slices.Equal(capa, []string{"TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "UTF8 USER", "IMPLEMENTATION gomta"}) {
		t.Fatalf("Capa = %q, %v", capa, err)
	}
	_, _, err = c.Stat()
	wantErr(t, err, "not logged in")
	wantErr(t, c.Pass("secret"), "USER first")
	if err := c.User("alice"); err != nil {
		t.Fatal(err)
	}
	pe := wantErr(t, c.Pass("nope"), "[AUTH] invalid user name or password")
	if pe.Code() != "AUTH" || pe.Error() != "-ERR [AUTH] invalid user name or password" {
		t.Errorf("Code = %q, Error = %q", pe.Code(), pe.Error())
	}
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}

	n, size, err := c.Stat()
	if err != nil || n != 2 || size != int64(len(msg1)+len(msg2)) {
		t.Fatalf("Stat = %d, %d, %v", n, size, err)
	}
	list, err := c.List()
	wantList := []pop3client.MsgInfo{{Num: 1, Size: int64(len(msg1))}, {Num: 2, Size: int64(len(msg2))}}
	if err != nil || !slices.Equal(list, wantList) {
		t.Fatalf("List = %v, %v", list, err)
	}
	one, err := c.ListOne(2)
	if err != nil || one != wantList[1] {
		t.Fatalf("ListOne(2) = %v, %v", one, err)
	}
	_, err = c.ListOne(3)
	wantErr(t, err, "no such message")
	uids, err := c.Uidl()
	if err != nil || !slices.Equal(uids, []pop3client.MsgInfo{{Num: 1, UID: "uid-0001"}, {Num: 2, UID: "uid-0002"}}) {
		t.Fatalf("Uidl = %v, %v", uids, err)
	}
	u, err := c.UidlOne(1)
	if err != nil || u != (pop3client.MsgInfo{Num: 1, UID: "uid-0001"}) {
		t.Fatalf("UidlOne(1) = %v, %v", u, err)
	}
	for i, want := range []string{msg1, msg2} {
		got, err := c.Retr(i + 1)
		if err != nil || string(got) != want {
			t.Fatalf("Retr(%d) = %q, %v; want %q", i+1, got, err, want)
		}
		if int64(len(got)) != list[i].Size {
			t.Fatalf("len(Retr(%d)) = %d, LIST said %d", i+1, len(got), list[i].Size)
		}
	}
	var buf bytes.Buffer
	if n, err := c.RetrTo(1, &buf); err != nil || n != int64(len(msg1)) || buf.String() != msg1 {
		t.Fatalf("RetrTo = %d, %q, %v", n, buf.String(), err)
	}
	top, err := c.Top(1, 2)
	if err != nil || string(top) != "From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n" {
		t.Fatalf("Top(1, 2) = %q, %v", top, err)
	}
	_, err = c.Retr(7)
	wantErr(t, err, "no such message")
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Dele(1), "message 1 already deleted")
	if n, _, _ := c.Stat(); n != 1 {
		t.Fatalf("Stat after Dele = %d", n)
	}
	if err := c.Rset(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := c.Stat(); n != 2 {
		t.Fatalf("Stat after Rset = %d", n)
	}
	if err := c.Dele(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if got := be.Messages("alice"); len(got) != 1 || string(got[0]) != msg1 {
		t.Fatalf("after Quit: %q", got)
	}
	if err := c.Noop(); err == nil {
		t.Error("Noop after Quit succeeded")
	}
	for _, s := range []string{"dial", "greeting", "CAPA", "USER", "PASS", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP", "QUIT"} {
		if !slices.Contains(steps, s) {
			t.Errorf("no trace for %s in %q", s, steps)
		}
	}
}

func TestClientCloseCommitsNothing(t *testing.T) {
	t.Parallel()
	be := newBackend()
	addr := start(t, be)
	c := dial(t, addr, pop3client.Options{})
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-be.Released("alice"):
	case <-time.After(ioWait):
		t.Fatal("maildrop not released after Close")
	}
	if got := be.Messages("alice"); len(got) != 2 {
		t.Fatalf("Close without QUIT removed messages: %d left", len(got))
	}
}

func TestClientInUseAndQuitError(t *testing.T) {
	t.Parallel()
	be := newBackend()
	be.CommitErr = errors.New("disk full")
	addr := start(t, be)
	a := dial(t, addr, pop3client.Options{})
	if err := a.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	b := dial(t, addr, pop3client.Options{})
	pe := wantErr(t, b.Login("alice", "secret"), "[IN-USE] mailbox already locked")
	if pe.Code() != "IN-USE" {
		t.Errorf("Code = %q", pe.Code())
	}
	wantErr(t, a.Quit(), "[SYS/TEMP] could not remove deleted messages, none removed")
}

// fakeServer accepts one connection and runs script on it.
func fakeServer(t *testing.T, script func(r *bufio.Reader, c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioWait))
		script(bufio.NewReader(c), c)
	}()
	return l.Addr().String()
}

func TestClientDotUnstuffing(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("q", 9000)
	addr := fakeServer(t, func(r *bufio.Reader, c net.Conn) {
		c.Write([]byte("+OK hi\r\n"))
		r.ReadString('\n')
		c.Write([]byte("+OK\r\n..\r\n...x\r\n.y\r\n" + long + "\r\nbare\nend\r\n.\r\n"))
		r.ReadString('\n')
		c.Write([]byte("+OK\r\n"))
	})
	c := dial(t, addr, pop3client.Options{})
	got, err := c.Retr(1)
	want := ".\r\n..x\r\ny\r\n" + long + "\r\nbare\nend\r\n"
	if err != nil || string(got) != want {
		t.Fatalf("Retr = %.60q, %v; want %.60q", got, err, want)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestClientProtocolErrorIsSticky(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(r *bufio.Reader, c net.Conn) {
		c.Write([]byte("+OK hi\r\n"))
		r.ReadString('\n')
		c.Write([]byte("* garbage\r\n"))
		r.ReadString('\n')
	})
	c := dial(t, addr, pop3client.Options{})
	err := c.Noop()
	if !errors.Is(err, pop3client.ErrProtocol) {
		t.Fatalf("Noop = %v, want ErrProtocol", err)
	}
	if err2 := c.Noop(); !errors.Is(err2, pop3client.ErrProtocol) {
		t.Fatalf("second Noop = %v, want the sticky error", err2)
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := fakeServer(t, func(r *bufio.Reader, c net.Conn) {
		c.Write([]byte("+OK hi\r\n"))
		<-hold // never answers
	})
	c := dial(t, addr, pop3client.Options{Timeout: 100 * time.Millisecond})
	err := c.Noop()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Noop = %v, want a timeout", err)
	}
}

func TestClientBadGreeting(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(r *bufio.Reader, c net.Conn) {
		c.Write([]byte("-ERR [SYS/TEMP] go away\r\n"))
	})
	_, err := pop3client.Dial(context.Background(), addr, pop3client.Options{})
	wantErr(t, err, "[SYS/TEMP] go away")
}

func TestClientDialCancelled(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := fakeServer(t, func(r *bufio.Reader, c net.Conn) { <-hold }) // no greeting
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if _, err := pop3client.Dial(ctx, addr, pop3client.Options{}); err == nil {
		t.Fatal("Dial succeeded without a greeting")
	}
}
