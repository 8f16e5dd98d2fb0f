package main

import (
	"os"
	"strings"
	"sync"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
	"gomta/session/smtpclient/smtpclienttest"
)

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
	f.popAddr = pop3test.Start(t, pop3.Config{Hostname: "pop.example.test"}, f.be)
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
	var out, errb mtatest.LogBuffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// closedAddr is a loopback address where nothing listens: a free port from
// outside the ephemeral range, which no other test's connection can take.
func closedAddr(t *testing.T) string {
	t.Helper()
	return mtatest.Addr(mtatest.FreePorts(t, 1)[0])
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
