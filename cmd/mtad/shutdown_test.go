package main

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"testing"
	"time"

	"gomta/mta"
	"gomta/mta/mtatest"
)

// openInData opens an SMTP session on port and leaves it in the middle of
// DATA: the server waits for the rest of the message.
func openInData(t *testing.T, port int, rcpt string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(4 * mta.ShutdownGrace))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line string
		code int
	}{{"EHLO shutdown.test", 250}, {"MAIL FROM:<stranger@example.org>", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}} {
		if err := tc.PrintfLine("%s", c.line); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tc.ReadResponse(c.code); err != nil {
			t.Fatalf("%d: %q: %v", port, c.line, err)
		}
	}
	if _, err := fmt.Fprintf(conn, "Subject: never finished\r\n\r\nhalf a bo"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// stillOpen reports whether the server has not closed conn yet (a short read
// times out instead of ending).
func stillOpen(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var b [64]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func refused(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// TestShutdownStopsEveryHostAtOnce: with two hosts, each holding a session in
// the middle of DATA, SIGTERM closes both hosts' listeners at once (each port
// refuses connections while the other host's session is still being waited
// for) and the process exits within one grace period, not one per host.
//
// It stays serial (no t.Parallel): it bounds the exit by wall-clock time
// (two grace periods), and Go runs serial tests before the parallel ones, so
// the other daemons' load never stretches that bound.
func TestShutdownStopsEveryHostAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits one shutdown grace period")
	}
	cfg, p := writeConfig(t, "")
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	qq := openInData(t, p[0], "usr2@mail.sustech.edu.cn")
	gm := openInData(t, p[2], "usr@gmail.com")

	sent := time.Now()
	if err := d.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var qqShut, gmShut bool // each port seen refusing while the other host's session was open
	mtatest.Eventually(t, "both SMTP ports refusing (or a session cut first)", func() bool {
		qqOpen, gmOpen := stillOpen(qq), stillOpen(gm)
		if !qqOpen || !gmOpen {
			return true
		}
		qqShut = qqShut || refused(p[0])
		gmShut = gmShut || refused(p[2])
		return qqShut && gmShut
	})
	if !qqShut || !gmShut {
		t.Errorf("a host's session was cut before the other host stopped accepting (exmail.qq.com refused: %v, gmail.com refused: %v)",
			qqShut, gmShut)
	}
	select {
	case <-d.Done():
		if d.Err() != nil {
			t.Errorf("exit after SIGINT: %v, want 0", d.Err())
		}
		t.Logf("exited %v after SIGINT (grace %v)", time.Since(sent).Round(time.Millisecond), mta.ShutdownGrace)
	case <-time.After(2*mta.ShutdownGrace - time.Since(sent)):
		t.Errorf("mtad still running %v after SIGINT: hosts drained one after another", 2*mta.ShutdownGrace)
	}
}
