package downgrade

import (
	"io"
	"testing"
)

// lines is a reader of an 8-bit text message of n body octets made on the
// fly, so that the benchmark's memory is the converter's own.
type lines struct {
	head []byte
	line []byte
	left int
}

func (l *lines) Read(p []byte) (int, error) {
	if len(l.head) > 0 {
		n := copy(p, l.head)
		l.head = l.head[n:]
		return n, nil
	}
	if l.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n+len(l.line) <= len(p) && l.left > 0 {
		n += copy(p[n:], l.line)
		l.left -= len(l.line)
	}
	if n == 0 {
		n = copy(p, l.line[:min(len(p), len(l.line))])
		l.left -= n
	}
	return n, nil
}

// BenchmarkConvert50MiB converts a 50 MiB 8-bit text message: B/op shows
// that memory does not grow with the message.
func BenchmarkConvert50MiB(b *testing.B) {
	const size = 50 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r := &lines{
			head: []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"),
			line: []byte("Gr\xc3\xbc\xc3\x9fe aus Shenzhen, \xe4\xbd\xa0\xe5\xa5\xbd, a line of ordinary length\r\n"),
			left: size,
		}
		if _, err := Convert(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
