package mta

import (
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"gomta/mta/config"
)

// runHosts runs every mail host of the course's files (plus extra [gomta]
// settings) with all their actors, on free loopback ports: SMTP, POP3, the
// queue and delivery, and the relay between them through the fake DNS, whose
// [P] records are pointed at the ports the hosts got.
func runHosts(t *testing.T, gomta string) map[string]*Host {
	t.Helper()
	return runHostsWith(t, gomta, nil)
}

// runHostsWith is runHosts with a last change to the configuration (its fake
// DNS tables, say) made once the hosts have their ports, before any actor runs.
func runHostsWith(t *testing.T, gomta string, fix func(cfg *config.Config, hosts map[string]*Host)) map[string]*Host {
	t.Helper()
	conf := append(mustRead(t, "../configs/cs305-config.toml"), []byte("\n[gomta]\n"+gomta)...)
	cfg, err := config.Parse("test", conf, "fdns", mustRead(t, "../configs/cs305-fdns.toml"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*Host{}
	for _, s := range cfg.Servers {
		s.SMTPPort, s.POPPort = 0, 0
		h, err := NewHost(cfg, s, t.TempDir(), nil, zaptest.NewLogger(t), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		hosts[s.Name] = h
	}
	// Every host's relay reads cfg.P: set it before any actor runs.
	for domain, mx := range cfg.MX {
		for _, h := range hosts {
			if h.isLocal(domain) {
				cfg.P[mx] = h.SMTPAddr.String()
			}
		}
	}
	if fix != nil {
		fix(cfg, hosts)
	}
	var actors []Actor
	stop := NewStop(ShutdownGrace)
	for _, h := range hosts {
		actors = append(actors, h.Actors(stop)...)
	}
	done := make(chan error, len(actors))
	for _, a := range actors {
		go func() { done <- a.Execute() }()
	}
	t.Cleanup(func() {
		for _, a := range actors {
			a.Interrupt(nil)
		}
		deadline := time.After(2 * ShutdownGrace)
		for range actors {
			select {
			case <-done:
			case <-deadline:
				t.Error("a host's actor did not stop")
				return
			}
		}
	})
	return hosts
}

// maildir returns the messages in user's Maildir on h (new and cur). It
// does not fail the test (Eventually's condition may not): a file it cannot
// read is left out.
func maildir(h *Host, user string) []string {
	var msgs []string
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(h.dataDir, "mail", user, sub)
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(dir, f.Name())); err == nil {
				msgs = append(msgs, string(b))
			}
		}
	}
	return msgs
}

// countSubject counts the messages of msgs with the given Subject line.
func countSubject(msgs []string, subject string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, "\r\nSubject: "+subject+"\r\n") {
			n++
		}
	}
	return n
}

// untrustedClient connects to addr from 127.0.0.2, outside the trusted
// network "127.0.0.1/32" that the tests configure, with Go's net/smtp.
func untrustedClient(t *testing.T, addr net.Addr) *smtp.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendVia runs one transaction on c and checks each reply is positive.
func sendVia(t *testing.T, c *smtp.Client, from string, rcpts []string, subject string) {
	t.Helper()
	if err := c.Mail(from); err != nil {
		t.Fatalf("MAIL FROM:<%s>: %v", from, err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
}
