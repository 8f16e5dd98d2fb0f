package smtp

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"gomta/session/limit"
)

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestDroppedConnectionsLeakNothing drops 2,000 connections mid-command,
// mid-DATA and mid-AUTH (after "334 ") and checks that goroutines and open
// descriptors come back to where they were. Not parallel: both counts are
// process-wide.
func TestDroppedConnectionsLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	total, workers := 2000, 16
	if os.Getenv("GOMTA_STRESS") != "" { // make stress: the 10,000
		total = 10000
	}
	lim := limit.New(limit.Config{MaxConns: 10000, MaxConnsPerIP: 10000, AuthFailures: 1 << 20})
	_, addr := startServer(t, Config{Auth: testAuth, AllowPlainAuth: allowAll, Limiter: lim,
		TLSConfig: serverTLS(t), Logger: zap.NewNop()}, &fakeBackend{keep: 1})
	// Warm up lazily started runtime and net goroutines, then take the baseline.
	cl := dial(t, addr)
	cl.expect("220 " + testHost + " ESMTP gomta")
	cl.ehlo("STARTTLS", "AUTH PLAIN LOGIN")
	cl.send("QUIT")
	cl.expect("221 2.0.0 " + testHost + " closing connection")
	cl.expectClosed()
	time.Sleep(100 * time.Millisecond)
	baseFDs := openFDs(t)
	baseG := goleak.IgnoreCurrent()

	drops := []struct {
		name  string
		send  string
		until string // read up to this reply line before dropping ("" = do not read)
	}{
		{"mid-command", "MAIL FROM:<a@b.c", ""},
		{"mid-DATA", "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nSubject: x\r\n\r\npartial bo", "354 end data with <CR><LF>.<CR><LF>"},
		{"mid-AUTH", "AUTH PLAIN\r\n", "334 "},
		{"mid-STARTTLS", "STARTTLS\r\n\x16\x03\x01", "220 2.0.0 Ready to start TLS"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := dropOne(addr, drops[i%len(drops)].send, drops[i%len(drops)].until); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("drop: %v", err)
	}

	goleak.VerifyNone(t, baseG) // retries until the sessions have ended
	fds := 0
	for try := 0; try < 50; try++ { // up to 5 s
		if fds = openFDs(t); fds <= baseFDs+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fds > baseFDs+2 {
		t.Errorf("open descriptors %d, baseline %d", fds, baseFDs)
	}
	t.Logf("descriptors: baseline %d, after %d connections %d", baseFDs, total, fds)
}

// dropOne connects, sends EHLO and waits for its reply (RFC 2920 §3.1: EHLO
// ends a pipelined group), sends in, reads until the reply line until (when
// set) and closes the connection.
func dropOne(addr, in, until string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte("EHLO x\r\n")); err != nil {
		return err
	}
	for i := 0; ; i++ { // greeting and EHLO lines: bounded
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
		if i == 20 {
			return errors.New("no end of the EHLO reply")
		}
	}
	if _, err := c.Write([]byte(in)); err != nil {
		return err
	}
	if until == "" {
		return nil
	}
	for range 20 { // replies: bounded
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSuffix(line, "\r\n") == until {
			return nil
		}
	}
	return nil
}
