package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
		refused  bool
	}{
		{"127.0.0.1:25", "127.0.0.1:25", false},
		{"127.8.9.10:2525", "127.8.9.10:2525", false},
		{"[::1]:25", "[::1]:25", false},
		{"[::ffff:127.0.0.1]:25", "[::ffff:127.0.0.1]:25", false},
		{"10.0.0.1:25", "", true},
		{"192.0.2.1:25", "", true},
		{"[2001:db8::1]:25", "", true},
		{"0.0.0.0:25", "", true},
		{"[::]:25", "", true},
	}
	for _, tc := range cases {
		got, err := loopbackAddr(context.Background(), tc.in)
		if tc.refused != errors.Is(err, errNotLoopback) || got != tc.want {
			t.Errorf("loopbackAddr(%q) = %q, %v", tc.in, got, err)
		}
	}
	if _, err := loopbackAddr(context.Background(), "no-port"); err == nil || errors.Is(err, errNotLoopback) {
		t.Errorf("no port: %v", err)
	}
	// localhost resolves to loopback addresses only (on any sane host).
	if got, err := loopbackAddr(context.Background(), "localhost:25"); err != nil || !strings.HasSuffix(got, ":25") || strings.HasPrefix(got, "localhost") {
		t.Errorf("localhost:25 = %q, %v", got, err)
	}
}

func TestNonLoopbackTargetRefused(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"smtp", "-addr", "192.0.2.1:25", "-to", "a@b.test"},
		{"pop3", "-addr", "192.0.2.1:110", "-user", "a", "-pass", "b"},
		{"idle", "-addr", "192.0.2.1:25"},
		{"verify", "-pop", "192.0.2.1:110", "-acked", writeTemp(t, "# mtaload run_id=R\na@b <R.0@mtaload>\n")},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "non-loopback") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f, err := createTemp(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

func TestUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, exitUsage, "usage: mtaload"},
		{[]string{"-h"}, exitOK, "modes:"},
		{[]string{"nope"}, exitUsage, "unknown mode"},
		{[]string{"smtp", "-h"}, exitOK, "-reuse"},
		{[]string{"pop3", "-h"}, exitOK, "-dele"},
		{[]string{"idle", "-h"}, exitOK, "-pid"},
		{[]string{"verify", "-h"}, exitOK, "-acked"},
		{[]string{"smtp", "-bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"smtp"}, exitUsage, "-to is required"},
		{[]string{"smtp", "-to", "a@b", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"smtp", "-to", "u%d@b", "-to-n", "2", "-rcpts", "3"}, exitUsage, "distinct mailboxes"},
		{[]string{"smtp", "-to", "u%s@b"}, exitUsage, "one %d"},
		{[]string{"smtp", "-to", "a@b", "-c", "0"}, exitUsage, "-c must be"},
		{[]string{"smtp", "-to", "a@b", "-auth", "nocolon"}, exitUsage, "-auth: want user:pass"},
		{[]string{"smtp", "-to", "a@b", "-auth", ":p"}, exitUsage, "-auth: want user:pass"},
		{[]string{"pop3"}, exitUsage, "-accounts or -user is required"},
		{[]string{"idle", "-proto", "imap"}, exitUsage, "smtp or pop3"},
		{[]string{"idle", "-pid", "999999999"}, exitUsage, "-pid"},
		{[]string{"verify"}, exitUsage, "-acked is required"},
		{[]string{"verify", "-acked", "/nonexistent/file"}, exitUsage, "acked file"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out.String(), errb.String())
		}
	}
}

func TestMakeBody(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 2, 3, 77, 78, 79, 80, 1000, 65536} {
		b := makeBody(size)
		if len(b) != size {
			t.Errorf("makeBody(%d) has %d octets", size, len(b))
		}
		lines := bytes.SplitAfter(b, []byte("\r\n"))
		for i, line := range lines {
			last := i == len(lines)-1
			if len(line) > 78 || len(line) > 0 && line[0] == '.' || !last && !bytes.HasSuffix(line, []byte("\r\n")) || bytes.Count(line, []byte("\n")) > 1 {
				t.Errorf("makeBody(%d): bad line %q", size, line)
			}
		}
	}
}

func TestMessageNoAllocAndContent(t *testing.T) {
	body := makeBody(5000)
	m := message{fixed: newMessageTemplate("me@x.test", time.Unix(0, 0)), runID: "RUN", body: body}
	buf := make([]byte, 1000)
	read := func(seq int64) []byte {
		var all []byte
		r := m.reset(seq, "you@y.test")
		for range 100 {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err == io.EOF {
				break
			}
		}
		return all
	}
	got := read(42)
	if !bytes.HasSuffix(got, body) || headerMessageID(got) != "<RUN.42@mtaload>" || len(got) != m.size() ||
		!bytes.Contains(got, []byte("To: <you@y.test>\r\n")) || !bytes.Contains(got, []byte("From: <me@x.test>\r\n")) {
		t.Errorf("message:\n%s", got[:len(got)-len(body)])
	}
	m.reset(1, "you@y.test") // grow the header buffer once
	allocs := testing.AllocsPerRun(200, func() {
		r := m.reset(123456789, "you@y.test")
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message", allocs)
	}
}

func TestHeaderMessageID(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"Message-ID: <a.1@mtaload>\r\n\r\nbody", "<a.1@mtaload>"},
		{"Subject: x\r\nmessage-id:   <a.2@mtaload>  \r\n\r\n", "<a.2@mtaload>"},
		{"Message-Id:\r\n <a.3@mtaload>\r\nX: y\r\n\r\n", "<a.3@mtaload>"},
		{"Subject: x\r\n\r\nMessage-ID: <in.body@x>\r\n", ""},
		{"X-Message-ID: <no@x>\r\n\r\n", ""},
		{"Received: from x\r\n\tby y\r\nMessage-ID: <a.4@mtaload>\n\n", "<a.4@mtaload>"},
	}
	for _, tc := range cases {
		if got := headerMessageID([]byte(tc.in)); got != tc.want {
			t.Errorf("headerMessageID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	status := "Name:\tmtad\nVmPeak:\t  900 kB\nVmHWM:\t   5120 kB\nVmRSS:\t    4096 kB\nThreads:\t7\n"
	rss, hwm, ok := parseStatus([]byte(status))
	if !ok || rss != 4096 || hwm != 5120 {
		t.Errorf("parseStatus = %d %d %v", rss, hwm, ok)
	}
	if _, _, ok := parseStatus([]byte("Name:\tx\n")); ok {
		t.Error("no VmRSS accepted")
	}
}

func TestAckedRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &ackedFile{RunID: "R", Acked: map[string][]string{
		"b@x": {"<R.10@mtaload>", "<R.9@mtaload>"},
		"a@x": {"<R.1@mtaload>"},
	}}
	for _, name := range []string{"acked.json", "acked.txt"} {
		path := dir + "/" + name
		if err := writeAcked(path, f); err != nil {
			t.Fatal(err)
		}
		g, err := readAcked(path)
		if err != nil {
			t.Fatal(err)
		}
		if g.RunID != "R" || g.count() != 3 || strings.Join(g.Acked["b@x"], ",") != "<R.9@mtaload>,<R.10@mtaload>" {
			t.Errorf("%s: read back %+v", name, g)
		}
	}
}

func createTemp(t *testing.T) (*os.File, error) { return os.CreateTemp(t.TempDir(), "acked-*.txt") }

// TestProcsAndCPUProfile: -procs is checked and applied, and -cpuprofile
// leaves a profile go tool pprof reads (gzip'd protobuf).
func TestProcsAndCPUProfile(t *testing.T) {
	// Not parallel: lastProcs is shared, and one CPU profile runs at a time.
	addr, _ := startSMTP(t, &sinkBackend{})
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	var rep report
	code, stderr := runJSON(t, &rep, "smtp", "-addr", addr, "-c", "2", "-n", "20", "-to", "a@example.test", "-cpuprofile", prof)
	if code != exitOK || rep.OK != 20 {
		t.Fatalf("exit %d ok %d; %s", code, rep.OK, stderr)
	}
	if got := lastProcs.Load(); got != 1 {
		t.Errorf("default -procs gave GOMAXPROCS %d, want 1", got)
	}
	data, err := os.ReadFile(prof)
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("profile: %d bytes, %v; want gzip data", len(data), err)
	}
	code, _ = runJSON(t, &rep, "smtp", "-addr", addr, "-n", "2", "-to", "a@example.test", "-procs", "0")
	if code != exitOK || lastProcs.Load() != int64(runtime.NumCPU()) {
		t.Errorf("-procs 0: exit %d, GOMAXPROCS %d, want %d", code, lastProcs.Load(), runtime.NumCPU())
	}
	if code, stderr = runJSON(t, &rep, "smtp", "-addr", addr, "-procs", "-2"); code != exitUsage || !strings.Contains(stderr, "-procs") {
		t.Errorf("-procs -2: exit %d, %q", code, stderr)
	}
	if code, stderr = runJSON(t, &rep, "smtp", "-addr", addr, "-to", "a@example.test", "-cpuprofile", filepath.Join(t.TempDir(), "no", "such")); code != exitUsage || !strings.Contains(stderr, "-cpuprofile") {
		t.Errorf("bad -cpuprofile: exit %d, %q", code, stderr)
	}
}
