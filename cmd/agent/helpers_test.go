package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/smtpclient/smtpclienttest"
)

// syncBuffer is an io.Writer safe for the agent and a watching test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output holds want n times.
func (s *syncBuffer) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s", s.String())
		}
	}()
	mtatest.Eventually(t, fmt.Sprintf("%q %d times in the output", want, n), func() bool {
		return strings.Count(s.String(), want) >= n
	})
}

// fakeMTA is an SMTP fake that drops accepted mail for local users into a
// real POP3 server's in-memory backend: enough of an MTA to send, then read
// back, in-process.
type fakeMTA struct {
	smtp    *smtpclienttest.Server
	be      *pop3test.Backend
	popAddr string
}

const (
	alice     = "alice@example.test"
	alicePass = "secret-a"
	bob       = "bob@example.test"
	bobPass   = "secret-b"
)

func startFakeMTA(t *testing.T) *fakeMTA {
	t.Helper()
	f := &fakeMTA{be: pop3test.New()}
	f.be.AddUser(alice, alicePass)
	f.be.AddUser(bob, bobPass)
	local := map[string]bool{alice: true, bob: true}
	var mu sync.Mutex
	var rcpts []string
	f.smtp = smtpclienttest.Start(t, smtpclienttest.Config{
		Ext: []string{"PIPELINING", "8BITMIME"},
		Mail: func(string) string {
			mu.Lock()
			rcpts = nil
			mu.Unlock()
			return "250 2.1.0 ok"
		},
		Rcpt: func(to string) string {
			to = strings.Trim(to, "<>")
			if strings.HasSuffix(to, "@example.test") && !local[to] {
				return "550 5.1.1 <" + to + ">: no such user here"
			}
			mu.Lock()
			rcpts = append(rcpts, to)
			mu.Unlock()
			return "250 2.1.5 ok"
		},
		Body: func(raw []byte) string {
			msg := unstuff(raw)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rcpts {
				if local[r] {
					f.be.Add(r, msg)
				}
			}
			return "250 2.0.0 queued as T1"
		},
	})
	srv := pop3.NewServer(pop3.Config{Hostname: "pop.example.test", Logger: zaptest.NewLogger(t)}, f.be)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.popAddr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return f
}

// unstuff turns DATA as sent (dot-stuffed, ending in ".\r\n") into the message.
func unstuff(raw []byte) []byte {
	s := strings.TrimSuffix(string(raw), ".\r\n")
	lines := strings.SplitAfter(s, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "..") {
			lines[i] = l[1:]
		}
	}
	return []byte(strings.Join(lines, ""))
}

// args gives the global flags that point the agent at the fake servers.
func (f *fakeMTA) args(email, pass string, rest ...string) []string {
	return append([]string{"-e", email, "-p", pass, "-s", f.smtp.Addr(), "-P", f.popAddr, "-timeout", "10s"}, rest...)
}

// runAgent runs the agent in-process on stdin text.
func runAgent(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb syncBuffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
