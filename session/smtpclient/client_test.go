package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// testOpts keeps a stalled test from hanging for the 5-minute default.
func testOpts() Options { return Options{LocalName: "client.test", Timeout: 30 * time.Second} }

func dial(t *testing.T, srv *smtpclienttest.Server, opt Options) *Client {
	t.Helper()
	c, err := Dial(context.Background(), srv.Addr(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// perRcpt answers RCPT by the local part: "bad*" 550, "later*" 450, else 250.
func perRcpt(to string) string {
	switch {
	case strings.HasPrefix(to, "bad"):
		return "550 5.1.1 <" + to + ">: no such user"
	case strings.HasPrefix(to, "later"):
		return "450 4.2.1 <" + to + ">: try again later"
	}
	return ""
}

func wantReply(t *testing.T, err error, code int, enh string) *reply.Reply {
	t.Helper()
	var r *reply.Reply
	if !errors.As(err, &r) {
		t.Fatalf("got %v (%T), want *reply.Reply %d", err, err, code)
	}
	if r.Code != code || r.Enhanced != enh {
		t.Fatalf("got reply %d %q, want %d %q", r.Code, r.Enhanced, code, enh)
	}
	return r
}

func TestSendPerRecipient(t *testing.T) {
	t.Parallel()
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			cfg := smtpclienttest.Config{Ext: []string{"SIZE 1000000", "8BITMIME"}, Rcpt: perRcpt}
			if pipelining {
				cfg.Ext = append(cfg.Ext, "PIPELINING")
				cfg.Strict = true // a client that waits per reply stalls and fails
			}
			srv := smtpclienttest.Start(t, cfg)
			var steps []string
			opt := testOpts()
			opt.Trace = func(step string, d time.Duration) {
				if d < 0 {
					t.Errorf("negative duration for %s", step)
				}
				steps = append(steps, step)
			}
			c := dial(t, srv, opt)
			rcpts := []string{"ann@b.test", "bad1@b.test", "later@b.test", "bob@b.test"}
			errs, err := c.Send("me@a.test", rcpts, strings.NewReader("Subject: hi\n\n.dot\nbody\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) != len(rcpts) {
				t.Fatalf("got %d results, want %d", len(errs), len(rcpts))
			}
			if errs[0] != nil || errs[3] != nil {
				t.Fatalf("accepted recipients got errors: %v", errs)
			}
			if r := wantReply(t, errs[1], 550, "5.1.1"); !r.Permanent() || r.Text != "<bad1@b.test>: no such user" {
				t.Fatalf("bad reply %+v", r)
			}
			if r := wantReply(t, errs[2], 450, "4.2.1"); !r.Temporary() {
				t.Fatalf("450 not temporary: %+v", r)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages", len(msgs))
			}
			if want := "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n"; string(msgs[0].Raw) != want {
				t.Fatalf("raw body %q, want %q", msgs[0].Raw, want)
			}
			if !slices.Equal(msgs[0].Rcpts, []string{"ann@b.test", "bob@b.test"}) || msgs[0].From != "me@a.test" {
				t.Fatalf("envelope %q %q", msgs[0].From, msgs[0].Rcpts)
			}
			wantLines := []string{"EHLO client.test", "MAIL FROM:<me@a.test>", "RCPT TO:<ann@b.test>",
				"RCPT TO:<bad1@b.test>", "RCPT TO:<later@b.test>", "RCPT TO:<bob@b.test>", "DATA", "QUIT"}
			if got := srv.Lines(); !slices.Equal(got, wantLines) {
				t.Fatalf("lines %q, want %q", got, wantLines)
			}
			wantSteps := []string{"connect", "greeting", "ehlo", "mail", "rcpt", "rcpt", "rcpt", "rcpt", "data", "data-end", "quit"}
			if !slices.Equal(steps, wantSteps) {
				t.Fatalf("trace %q, want %q", steps, wantSteps)
			}
			if ok, p := c.Extension("size"); !ok || p != "1000000" {
				t.Fatalf("SIZE extension: %v %q", ok, p)
			}
			if ok, _ := c.Extension("PIPELINING"); ok != pipelining {
				t.Fatalf("PIPELINING: %v", ok)
			}
		})
	}
}

// TestPipelineWindow sends more recipients than one pipelined batch holds.
func TestPipelineWindow(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}, Rcpt: perRcpt})
	c := dial(t, srv, testOpts())
	var rcpts []string
	for i := range 2*pipelineWindow + 17 {
		if i%7 == 3 {
			rcpts = append(rcpts, fmt.Sprintf("bad%d@b.test", i))
		} else {
			rcpts = append(rcpts, fmt.Sprintf("u%d@b.test", i))
		}
	}
	errs, err := c.Send("", rcpts, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if (i%7 == 3) != (e != nil) {
			t.Fatalf("rcpt %d (%s): %v", i, rcpts[i], e)
		}
	}
	if m := srv.Messages(); len(m) != 1 || m[0].From != "" || string(m[0].Raw) != "x\r\n.\r\n" {
		t.Fatalf("messages %+v", m)
	}
}

func TestMultiLineNegativeReply(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{
		Ext: []string{},
		Rcpt: func(string) string {
			return "550-5.7.1 first line\r\n550-5.7.1 second line\r\n550 5.7.1 third line"
		},
	})
	c := dial(t, srv, testOpts())
	if err := c.Mail("me@a.test"); err != nil {
		t.Fatal(err)
	}
	r := wantReply(t, c.Rcpt("x@b.test"), 550, "5.7.1")
	if r.Text != "first line\nsecond line\nthird line" {
		t.Fatalf("text %q", r.Text)
	}
	if err := c.Noop(); err != nil { // still in step
		t.Fatal(err)
	}
}

func TestSendRefusals(t *testing.T) {
	t.Parallel()
	for _, pipelining := range []bool{false, true} {
		ext := []string{}
		if pipelining {
			ext = []string{"PIPELINING"}
		}
		t.Run(fmt.Sprintf("mail refused/pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext, Strict: true, Mail: func(from string) string {
				if from == "spammer@a.test" {
					return "553 5.7.1 go away"
				}
				return ""
			}})
			c := dial(t, srv, testOpts())
			errs, err := c.Send("spammer@a.test", []string{"a@b.test", "b@b.test"}, strings.NewReader("x"))
			wantReply(t, err, 553, "5.7.1")
			for _, e := range errs {
				wantReply(t, e, 553, "5.7.1")
			}
			// The connection is still usable: RSET went out, a new transaction works.
			errs, err = c.Send("ok@a.test", []string{"a@b.test"}, strings.NewReader("x"))
			if err != nil || errs[0] != nil {
				t.Fatalf("second transaction: %v %v", err, errs)
			}
			if pipelining && !slices.Contains(srv.Lines(), "RSET") {
				t.Fatalf("no RSET after refused MAIL: %q", srv.Lines())
			}
		})
		t.Run(fmt.Sprintf("no recipient/pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext, Strict: true, Rcpt: perRcpt})
			c := dial(t, srv, testOpts())
			errs, err := c.Send("me@a.test", []string{"bad1@b.test", "later@b.test"}, strings.NewReader("x"))
			if !errors.Is(err, ErrNoRecipients) {
				t.Fatalf("got %v, want ErrNoRecipients", err)
			}
			wantReply(t, err, 450, "4.2.1") // the last refusal is wrapped
			wantReply(t, errs[0], 550, "5.1.1")
			wantReply(t, errs[1], 450, "4.2.1")
			if len(srv.Messages()) != 0 {
				t.Fatal("a message was sent")
			}
			if err := c.Noop(); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(fmt.Sprintf("data refused/pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext, Strict: true,
				Data: func() string { return "452 4.3.1 insufficient storage" }})
			c := dial(t, srv, testOpts())
			errs, err := c.Send("me@a.test", []string{"a@b.test"}, strings.NewReader("x"))
			wantReply(t, err, 452, "4.3.1")
			wantReply(t, errs[0], 452, "4.3.1")
			if err := c.Noop(); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(fmt.Sprintf("final refused/pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext, Strict: true,
				Body: func([]byte) string { return "554 5.6.0 content rejected" }})
			c := dial(t, srv, testOpts())
			errs, err := c.Send("me@a.test", []string{"a@b.test", "bad@b.test"}, strings.NewReader("x"))
			wantReply(t, err, 554, "5.6.0")
			wantReply(t, errs[0], 554, "5.6.0")
			wantReply(t, errs[1], 554, "5.6.0")
		})
	}
}

func TestConnectionDrop(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"RCPT", "DATA", "BODY"} {
		for _, pipelining := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pipelining=%v", step, pipelining), func(t *testing.T) {
				t.Parallel()
				ext := []string{}
				if pipelining {
					ext = []string{"PIPELINING"}
				}
				srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext, Drop: func(s string) bool { return s == step }})
				c := dial(t, srv, testOpts())
				errs, err := c.Send("me@a.test", []string{"a@b.test", "b@b.test"}, strings.NewReader("hello\r\n"))
				if err == nil {
					t.Fatal("no error after the server dropped the connection")
				}
				var r *reply.Reply
				if errors.As(err, &r) {
					t.Fatalf("a dropped connection reported as a reply: %v", r)
				}
				for i, e := range errs {
					if e == nil {
						t.Fatalf("rcpt %d reported delivered", i)
					}
				}
				if err2 := c.Noop(); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("later call: %v, want the sticky %v", err2, err)
				}
				if err := c.Quit(); err != nil {
					t.Fatalf("Quit on a broken connection: %v", err)
				}
			})
		}
	}
}

func TestHeloFallback(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{}) // Ext nil: EHLO refused
	c := dial(t, srv, testOpts())
	errs, err := c.Send("me@a.test", []string{"a@b.test"}, strings.NewReader("x"))
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	if ok, _ := c.Extension("PIPELINING"); ok {
		t.Fatal("extension after HELO")
	}
	lines := srv.Lines()
	if len(lines) < 2 || lines[0] != "EHLO client.test" || lines[1] != "HELO client.test" {
		t.Fatalf("lines %q", lines)
	}
}

func TestGreetingRefused(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Greeting: "554-5.3.2 not now\r\n554 5.3.2 really"})
	_, err := Dial(context.Background(), srv.Addr(), testOpts())
	r := wantReply(t, err, 554, "5.3.2")
	if r.Text != "not now\nreally" {
		t.Fatalf("text %q", r.Text)
	}
}

func TestClosing421IsSticky(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{},
		Mail: func(string) string { return "421 4.7.0 shutting down" }})
	c := dial(t, srv, testOpts())
	wantReply(t, c.Mail("me@a.test"), 421, "4.7.0")
	wantReply(t, c.Noop(), 421, "4.7.0")
}

func TestBadAddressesNotSent(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	c := dial(t, srv, testOpts())
	errs, err := c.Send("me@a.test", []string{"a@b.test\r\nRSET", "ok@b.test", "x>y@b.test"}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := wantReply(t, errs[0], 501, "5.1.3"); !r.Permanent() {
		t.Fatal("not permanent")
	}
	wantReply(t, errs[2], 501, "5.1.3")
	if errs[1] != nil {
		t.Fatal(errs[1])
	}
	wantReply(t, c.Mail("a\nb"), 501, "5.1.7")
	for _, l := range srv.Lines() {
		if strings.Contains(l, "RSET") || strings.Contains(l, "x>y") {
			t.Fatalf("bad address reached the wire: %q", l)
		}
	}
}

// TestDialContextCancel cancels while the server never greets.
func TestDialContextCancel(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		cancel() // connected, no greeting: Dial must give up
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
	}()
	_, err = Dial(ctx, ln.Addr().String(), testOpts())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	wg.Wait()
}

// TestCloseAborts closes the client from another goroutine while it waits
// for a reply that never comes.
func TestCloseAborts(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}, Strict: true})
	c := dial(t, srv, testOpts())
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Mail("me@a.test") }() // strict server holds the MAIL reply
	for i := 0; !slices.Contains(srv.Lines(), "MAIL FROM:<me@a.test>"); i++ {
		if i > 10000 {
			t.Fatal("server never got MAIL")
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.Close()
	if err := <-done; err == nil {
		t.Fatal("Mail succeeded after Close")
	}
}

func TestDataBodyReadError(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{}})
	c := dial(t, srv, testOpts())
	boom := errors.New("disk on fire")
	body := io.MultiReader(strings.NewReader("partial\r\n"), iotestErr{boom})
	_, err := c.Send("me@a.test", []string{"a@b.test"}, body)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the body's read error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("server got %d messages from a failed body", n)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }
