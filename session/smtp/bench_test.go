package smtp

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// bigBody writes lines of 100 octets, CRLF included, up to n octets, to w.
func bigBody(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	line := []byte(strings.Repeat("x", 98) + "\r\n")
	for i := 0; i < n/len(line); i++ {
		for j, v := 7, i; j >= 0; j, v = j-1, v/10 { // "%08d" without allocating
			line[j] = byte('0' + v%10)
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// TestLargeMessageStreams sends a 50 MiB message and checks that it reached
// the MessageWriter whole, in writes no larger than the streaming buffer.
func TestLargeMessageStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MiB message")
	}
	t.Parallel()
	const size = 50 << 20
	be := &fakeBackend{keep: 4096}
	_, addr := startServer(t, Config{MaxSize: 64 << 20}, be)
	cl := dialReady(t, addr)
	cl.c.SetDeadline(time.Now().Add(5 * time.Minute))
	cl.send("MAIL FROM:<a@example.org> SIZE="+fmt.Sprint(size), "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	if err := bigBody(cl.c, size); err != nil {
		t.Fatal(err)
	}
	cl.write(".\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0001")

	m := be.message(t, 0)
	hdrLen := strings.Index(m.body.String(), "00000000xxx")
	if hdrLen < 0 || !strings.HasPrefix(m.body.String(), "Received: ") {
		t.Fatalf("message starts %q", m.body.String()[:200])
	}
	if m.n != int64(hdrLen+size) {
		t.Errorf("writer got %d octets, want %d", m.n, hdrLen+size)
	}
	want := sha256.New()
	want.Write(m.body.Bytes()[:hdrLen])
	bigBody(want, size)
	if string(want.Sum(nil)) != string(m.sum.Sum(nil)) {
		t.Error("body digest differs")
	}
	if m.maxWrite > chunkSize {
		t.Errorf("largest write %d octets, buffer is %d", m.maxWrite, chunkSize)
	}
	if min := (hdrLen + size) / chunkSize; m.writes < min {
		t.Errorf("%d writes, want at least %d", m.writes, min)
	}
}

// BenchmarkTransaction measures one mail transaction (MAIL, RCPT, DATA of a
// 10 KiB message) on an open loopback session.
func BenchmarkTransaction(b *testing.B) {
	be := &fakeBackend{keep: 1}
	_, addr := startServer(b, Config{}, be)
	cl := dialReady(b, addr)
	cl.c.SetDeadline(time.Time{})
	body := strings.Repeat(strings.Repeat("b", 78)+"\r\n", 128) + ".\r\n"
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
		for range 3 {
			if _, err := cl.readLine(); err != nil {
				b.Fatal(err)
			}
		}
		cl.write(body)
		if line, err := cl.readLine(); err != nil || !strings.HasPrefix(line, "250 ") {
			b.Fatalf("%q %v", line, err)
		}
	}
}

// BenchmarkSession measures a whole session per iteration: connect, EHLO, one
// transaction of a 10 KiB message, QUIT.
func BenchmarkSession(b *testing.B) {
	be := &fakeBackend{keep: 1}
	_, addr := startServer(b, Config{}, be)
	body := strings.Repeat(strings.Repeat("b", 78)+"\r\n", 128) + ".\r\n"
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		cl := &client{t: b, c: c, br: bufio.NewReader(c)}
		cl.readLine()
		cl.write("EHLO bench\r\n") // EHLO ends a group (RFC 2920 §3.1)
		for range 6 {
			if _, err := cl.readLine(); err != nil {
				b.Fatal(err)
			}
		}
		cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
		for range 3 {
			if _, err := cl.readLine(); err != nil {
				b.Fatal(err)
			}
		}
		cl.write(body + "QUIT\r\n")
		if line, err := cl.readLine(); err != nil || !strings.HasPrefix(line, "250 ") {
			b.Fatalf("%q %v", line, err)
		}
		cl.readLine()
		c.Close()
	}
}

// BenchmarkLargeMessage streams a 50 MiB message per iteration; allocs/op
// shows that memory does not grow with the message.
func BenchmarkLargeMessage(b *testing.B) {
	const size = 50 << 20
	be := &fakeBackend{keep: 1}
	_, addr := startServer(b, Config{MaxSize: 64 << 20}, be)
	cl := dialReady(b, addr)
	cl.c.SetDeadline(time.Time{})
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
		for range 3 {
			cl.readLine()
		}
		if err := bigBody(cl.c, size); err != nil {
			b.Fatal(err)
		}
		cl.write(".\r\n")
		if line, err := cl.readLine(); err != nil || !strings.HasPrefix(line, "250 ") {
			b.Fatalf("%q %v", line, err)
		}
	}
}
