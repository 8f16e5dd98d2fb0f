package main

import (
	"fmt"
	"net/smtp"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/smtpclient/smtpclienttest"
)

// relayingMtad runs one mtad (exmail.qq.com) whose mail for far.test goes
// to srv, with extra [gomta] settings, and returns its SMTP address.
func relayingMtad(t *testing.T, srv *smtpclienttest.Server, extra string) (*mtatest.Daemon, string) {
	t.Helper()
	p := mtatest.FreePorts(t, 2)
	cfg := fmt.Sprintf("[server]\n\"exmail.qq.com\" = { smtp = %d, pop = %d }\n"+
		"[accounts.\"exmail.qq.com\"]\n\"usr1@mail.sustech.edu.cn\" = \"pass1\"\n"+
		"[MX]\n\"mail.sustech.edu.cn.\" = \"mxbiz1.qq.com.\"\n\"far.test.\" = \"mx.far.test.\"\n"+
		"[P]\n\"mxbiz1.qq.com.\" = \"%d\"\n\"mx.far.test.\" = %q\n[gomta]\n%s", p[0], p[1], p[0], srv.Port(), extra)
	path := filepath.Join(t.TempDir(), "config.toml")
	write(t, path, cfg)
	d := mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir()}, p...)
	return d, mtatest.Addr(p[0])
}

func sendFar(t *testing.T, addr string, i int) {
	t.Helper()
	body := fmt.Sprintf("Subject: relay %d\r\n\r\nmessage %d\r\n", i, i)
	if err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"ann@far.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func countLines(lines []string, verb string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, verb) {
			n++
		}
	}
	return n
}

// TestRelayReusesConnections: ten messages to one domain, submitted one
// after another, reach the next MTA over fewer connections than messages
// (RSET between messages on one), each logged as relay delivered with the
// address it reached; at shutdown the kept connection is ended with QUIT.
func TestRelayReusesConnections(t *testing.T) {
	t.Parallel()
	const n = 10
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	d, addr := relayingMtad(t, srv, "")
	for i := range n {
		sendFar(t, addr, i)
		mtatest.Eventually(t, "the message at the next MTA", func() bool { return len(srv.Messages()) == i+1 })
	}
	conns := srv.Conns()
	t.Logf("%d messages over %d connections", n, conns)
	if conns >= n || countLines(srv.Lines(), "RSET") < n-conns {
		t.Fatalf("%d messages over %d connections, lines %q", n, conns, srv.Lines())
	}
	mtatest.Eventually(t, "a relay delivered line per message", func() bool {
		return strings.Count(d.Log.String(), `"msg":"relay delivered"`) == n
	})
	if want := `"mx_addr":"` + srv.Addr() + `"`; strings.Count(d.Log.String(), want) < n {
		t.Errorf("relay delivered lines lack %s", want)
	}
	quits := countLines(srv.Lines(), "QUIT")
	d.Stop(t)
	if got := countLines(srv.Lines(), "QUIT"); got != quits+1 {
		t.Fatalf("QUIT %d before the stop, %d after: the kept connection was not ended", quits, got)
	}
}

// TestRelayConcurrencyPerDestination: with relay_concurrency = 3 and
// enough queue workers for all, ten messages to a slow next MTA are never
// more than three transactions there at once, and all arrive.
func TestRelayConcurrencyPerDestination(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 10
	var mu sync.Mutex
	inBody, most := 0, 0
	release := make(chan struct{})
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}, Body: func([]byte) string {
		mu.Lock()
		inBody++
		most = max(most, inBody)
		mu.Unlock()
		<-release
		mu.Lock()
		inBody--
		mu.Unlock()
		return ""
	}})
	_, addr := relayingMtad(t, srv, fmt.Sprintf("relay_concurrency = %d\nqueue_workers = 32\n", limit))
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the server's sessions blocked
	for i := range n {
		sendFar(t, addr, i)
	}
	mtatest.Eventually(t, "relay_concurrency transactions held at the next MTA", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inBody == limit
	})
	unblock()
	mtatest.Eventually(t, "every message at the next MTA", func() bool { return len(srv.Messages()) == n })
	mu.Lock()
	defer mu.Unlock()
	t.Logf("at most %d transactions at once, %d connections for %d messages", most, srv.Conns(), n)
	if most != limit || srv.Conns() > n {
		t.Fatalf("at most %d at once (limit %d), %d connections", most, limit, srv.Conns())
	}
}

// TestRelayBackoff: a next MTA that refuses (421 greeting) is dialled once
// for five messages during relay_backoff, each deferred naming the refusal
// and the suspension; a message after the window dials again.
func TestRelayBackoff(t *testing.T) {
	t.Parallel()
	const n, window = 5, 3 * time.Second
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Greeting: "421 4.3.2 too busy"})
	d, addr := relayingMtad(t, srv, fmt.Sprintf("relay_backoff = %q\nretry_base = \"1h\"\nretry_max = \"1h\"\n", window))
	start := time.Now()
	for i := range n {
		sendFar(t, addr, i)
	}
	mtatest.Eventually(t, "every message deferred", func() bool {
		return strings.Count(d.Log.String(), `"msg":"relay deferred"`) == n
	})
	refusals := srv.Conns()
	if time.Since(start) >= window {
		t.Skipf("the machine took %v for %d messages, longer than the back-off window", time.Since(start), n)
	}
	log, suspended := d.Log.String(), 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"relay deferred"`) && strings.Contains(l, `"error":"delivery temporarily suspended: 421 4.3.2 too busy"`) {
			suspended++
		}
	}
	if refusals != 1 || suspended != n-1 {
		t.Fatalf("%d connections for %d messages in the window; log:\n%s", refusals, n, log)
	}
	// The window runs from the refusal, which came before every deferred
	// line seen above: a full window from now is past it.
	time.Sleep(window + 100*time.Millisecond)
	sendFar(t, addr, n)
	mtatest.Eventually(t, "a new connection after the window", func() bool { return srv.Conns() == 2 })
}

// TestRelayDeadCachedConnection: a kept connection that the next MTA has
// dropped (it closes on RSET) is replaced by a new one, and the message is
// delivered on it, not deferred.
func TestRelayDeadCachedConnection(t *testing.T) {
	t.Parallel()
	var rsets atomic.Int32
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"},
		Drop: func(step string) bool { return step == "RSET" && rsets.Add(1) == 1 }})
	d, addr := relayingMtad(t, srv, "")
	for i := range 2 {
		sendFar(t, addr, i)
		mtatest.Eventually(t, "the message at the next MTA", func() bool { return len(srv.Messages()) == i+1 })
	}
	mtatest.Eventually(t, "two relay delivered lines", func() bool {
		return strings.Count(d.Log.String(), `"msg":"relay delivered"`) == 2
	})
	if rsets.Load() != 1 || srv.Conns() != 2 || strings.Contains(d.Log.String(), "relay deferred") {
		t.Fatalf("RSET %d, %d connections; log:\n%s", rsets.Load(), srv.Conns(), d.Log.String())
	}
}
