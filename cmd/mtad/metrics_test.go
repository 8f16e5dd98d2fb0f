package main

import (
	"context"
	"errors"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/metrics/metricstest"
	"gomta/session/pop3client"
)

// The hosts of writeConfig.
const (
	qqHost = "exmail.qq.com" // @mail.sustech.edu.cn
	gmHost = "gmail.com"
)

// scrapeTest is a running two-host mtad with /metrics and the counts of a
// first scrape, so that the test reads what moved since.
type scrapeTest struct {
	t    *testing.T
	url  string
	p    []int // qq SMTP, qq POP3, gmail SMTP, gmail POP3
	base metricstest.Families
}

func startWithMetrics(t *testing.T) *scrapeTest {
	t.Helper()
	extra := mtatest.FreePorts(t, 2)
	mp, down := extra[0], extra[1] // down: nothing listens there
	// One retry an hour: the message to the host that is down stays deferred.
	cfg, p := writeConfig(t, "[gomta]\nretry = [\"1h\"]\n")
	fdns := filepath.Join(t.TempDir(), "fdns.toml")
	err := os.WriteFile(fdns, fmt.Appendf(nil, "[MX]\n\"down.test.\" = \"mx.down.test.\"\n[P]\n\"mx.down.test.\" = \"%d\"\n", down), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	mtatest.StartDaemon(t, []string{"-config", cfg, "-fdns", fdns, "-data", t.TempDir(),
		"-metrics", mtatest.Addr(mp)}, append(p, mp)...)
	st := &scrapeTest{t: t, url: "http://" + mtatest.Addr(mp) + "/metrics", p: p}
	st.base = metricstest.Scrape(t, st.url)
	return st
}

// delta is how much a sample moved since the first scrape in f.
func (st *scrapeTest) delta(f metricstest.Families, name string, labels ...string) float64 {
	st.t.Helper()
	before, _ := st.base.Value(name, labels...)
	return f.Get(st.t, name, labels...) - before
}

// want is one expected movement since the first scrape.
type want struct {
	name   string
	labels []string
	delta  float64
}

// TestMetricsMoveAsMailFlows sends mail that is delivered locally, relayed,
// bounced and deferred, reads it over POP3, fails a POP3 login, and checks
// that the counts scraped from /metrics moved by exactly that.
func TestMetricsMoveAsMailFlows(t *testing.T) {
	t.Parallel()
	st := startWithMetrics(t)
	qq, gm := []string{"host", qqHost}, []string{"host", gmHost}
	// usr2: local; usr@gmail.com: relayed; nobody@gmail.com: refused by gmail
	// (550), so bounced to usr1 (a local delivery); x@down.test: deferred.
	rcpts := []string{"usr2@mail.sustech.edu.cn", "usr@gmail.com", "nobody@gmail.com", "x@down.test"}
	if err := smtp.SendMail(mtatest.Addr(st.p[0]), nil, "usr1@mail.sustech.edu.cn", rcpts,
		message("usr1@mail.sustech.edu.cn", strings.Join(rcpts, ", "), "metrics", "counted")); err != nil {
		t.Fatal(err)
	}
	mtatest.WaitMailbox(t, mtatest.Addr(st.p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	mtatest.WaitMailbox(t, mtatest.Addr(st.p[1]), "usr1@mail.sustech.edu.cn", "pass1", 1) // the bounce
	mtatest.WaitMailbox(t, mtatest.Addr(st.p[3]), "usr@gmail.com", "pass", 1)
	if c, err := pop3client.Dial(context.Background(), mtatest.Addr(st.p[3]), pop3client.Options{}); err != nil {
		t.Fatal(err)
	} else if err := c.Login("usr@gmail.com", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	} else {
		c.Close()
	}
	wants := []want{
		{"gomta_messages_accepted_total", qq, 1},
		{"gomta_messages_accepted_total", gm, 1},                                          // relayed in from qq
		{"gomta_deliveries_total", append(qq, "kind", "local", "result", "delivered"), 2}, // usr2, the bounce
		{"gomta_deliveries_total", append(qq, "kind", "relay", "result", "delivered"), 1},
		{"gomta_deliveries_total", append(qq, "kind", "relay", "result", "bounced"), 1},
		{"gomta_deliveries_total", append(qq, "kind", "relay", "result", "deferred"), 1},
		{"gomta_deliveries_total", append(gm, "kind", "local", "result", "delivered"), 1},
		{"gomta_delivery_latency_seconds", append(qq, "kind", "local"), 2},
		{"gomta_delivery_latency_seconds", append(qq, "kind", "relay"), 1},
		{"gomta_bounces_total", qq, 1},
		{"gomta_bounces_total", gm, 0},
		{"gomta_queue_messages", append(qq, "state", "deferred"), 1},
		{"gomta_auth_failures_total", append(gm, "proto", "pop3"), 1},
	}
	var f metricstest.Families
	miss := "no scrape yet"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last difference from what was expected: %s", miss)
		}
	})
	mtatest.Eventually(t, "the counts to move as the mail flowed", func() bool {
		var err error
		if f, err = metricstest.ScrapeErr(st.url); err != nil {
			miss = err.Error()
			return false
		}
		for _, w := range wants {
			v, ok := f.Value(w.name, w.labels...)
			if d := v - st.baseValue(w); !ok || d != w.delta {
				miss = fmt.Sprintf("%s%v moved by %v (present %v), want %v", w.name, w.labels, d, ok, w.delta)
				return false
			}
		}
		return true
	})
	st.checkSessions(f, qq, gm)
	if age := f.Get(t, "gomta_queue_oldest_message_age_seconds", qq...); age <= 0 {
		t.Errorf("oldest queued message age %v with a deferred message, want above 0", age)
	}
	if n := st.delta(f, "gomta_spool_commit_batch_size", qq...); n < 2 { // the message and its bounce
		t.Errorf("qq group commits observed %v, want at least 2", n)
	}
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := f.Value(name); !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}

func (st *scrapeTest) baseValue(w want) float64 {
	v, _ := st.base.Value(w.name, w.labels...)
	return v
}

// checkSessions checks the session and reply counts of the flow above:
// sessions on both protocols of both hosts, 2xx replies, gmail's 550 to
// nobody@, and no SMTP session left open.
func (st *scrapeTest) checkSessions(f metricstest.Families, qq, gm []string) {
	t := st.t
	t.Helper()
	for _, h := range [][]string{qq, gm} {
		for _, proto := range []string{"smtp", "pop3"} {
			if n := st.delta(f, "gomta_sessions_total", append(h, "proto", proto)...); n < 1 {
				t.Errorf("%v %s sessions moved by %v, want at least 1", h, proto, n)
			}
		}
		if n := st.delta(f, "gomta_smtp_replies_total", append(h, "class", "2xx")...); n < 5 {
			t.Errorf("%v 2xx replies moved by %v, want at least 5 (greeting, EHLO, MAIL, RCPT, DATA's end)", h, n)
		}
	}
	if n := st.delta(f, "gomta_smtp_replies_total", append(gm, "class", "5xx")...); n < 1 {
		t.Errorf("gmail 5xx replies moved by %v, want the 550 to nobody@", n)
	}
	mtatest.Eventually(t, "every SMTP session closed", func() bool {
		f, err := metricstest.ScrapeErr(st.url)
		if err != nil {
			return false
		}
		q, ok1 := f.Value("gomta_sessions_open", append(qq, "proto", "smtp")...)
		g, ok2 := f.Value("gomta_sessions_open", append(gm, "proto", "smtp")...)
		return ok1 && ok2 && q+g == 0
	})
}

// /metrics is served only on an address written out: an empty host (every
// address by accident) and names are refused, by the flag and in the config.
func TestMetricsListenRefused(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":9100", "localhost:9100"} {
		out, err := exec.Command(mtatest.Mtad(t), "-metrics", addr, "-data", t.TempDir()).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "-metrics") {
			t.Errorf("-metrics %s: %v, want exit status 2 naming -metrics:\n%s", addr, err, out)
		}
	}
	cfg, _ := writeConfig(t, "[gomta]\nmetrics_listen = \":9100\"\n")
	out, err := exec.Command(mtatest.Mtad(t), "-config", cfg, "-data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "metrics_listen") || !strings.Contains(string(out), "0.0.0.0:9100") {
		t.Errorf("metrics_listen = \":9100\": %v, want refused, saying how to write every address:\n%s", err, out)
	}
}
