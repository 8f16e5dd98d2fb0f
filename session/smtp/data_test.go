package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

// refMaxHops is the Received limit checkData gives the reader.
const refMaxHops = 2

// refField is a header field's first line (RFC 5322 §3.6.8, with the
// obsolete white space before the colon of §4.5.3).
var refField = regexp.MustCompile(`^([\x21-\x39\x3b-\x7e]+)[ \t]*:`)

// refHops counts the Received fields of a message given as lines without
// their CRLF: the header section is the leading run of fields and of their
// continuation lines (starting with SP or HTAB).
func refHops(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			continue
		}
		m := refField.FindSubmatch(l)
		if m == nil {
			break
		}
		if strings.EqualFold(string(m[1]), "received") {
			n++
		}
	}
	return n
}

// refData is a plain reference of the DATA rules, on a whole input: the body
// ends at the first CRLF.CRLF (the start counting as after a CRLF), lines are
// split at CRLF, a CR or LF left in a line is bare, a leading dot is removed.
func refData(in []byte, max int64) (body []byte, consumed int, faults dataFault, ended bool) {
	s := append([]byte("\r\n"), in...)
	i := bytes.Index(s, []byte("\r\n.\r\n"))
	if i < 0 {
		return nil, 0, 0, false
	}
	raw := s[2 : i+2]
	var lines [][]byte
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\r\n"))
		raw = rest
		if bytes.ContainsAny(line, "\r\n") {
			faults |= faultBareEOL
		}
		if bytes.IndexByte(line, 0) >= 0 {
			faults |= faultNUL
		}
		line = bytes.TrimPrefix(line, []byte("."))
		lines = append(lines, line)
		if len(line)+2 > maxTextLine {
			faults |= faultLongLine
		}
		body = append(append(body, line...), '\r', '\n')
	}
	if int64(len(body)) > max {
		faults |= faultTooBig
	}
	if refHops(lines) > refMaxHops {
		faults |= faultLoop
	}
	return body, i + 3, faults, true
}

// recorder is a sink that checks the size of every write.
type recorder struct {
	buf      bytes.Buffer
	maxWrite int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.maxWrite = max(r.maxWrite, len(p))
	return r.buf.Write(p)
}

// checkData runs dataReader on in with a reader buffer of bufSize and a chunk
// buffer of chunk octets, and compares it with refData.
func checkData(t *testing.T, in []byte, bufSize, chunk int, maxSize int64) {
	t.Helper()
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, bufSize)
	rec := &recorder{}
	cw := &chunkWriter{w: rec, buf: make([]byte, 0, chunk)}
	d := &dataReader{br: br, max: maxSize, sink: cw, maxHops: refMaxHops}
	err := d.read()
	if err == nil {
		cw.Flush()
	}
	body, consumed, faults, ended := refData(in, maxSize)
	if !ended {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("no end marker in %q: err %v", in, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("read %q: %v", in, err)
	}
	if got := len(in) - br.Buffered() - src.Len(); got != consumed {
		t.Fatalf("consumed %d octets of %q, want %d", got, in, consumed)
	}
	if d.n != int64(len(body)) {
		t.Errorf("size %d, want %d", d.n, len(body))
	}
	mask := faultBareEOL | faultTooBig | faultNUL
	if faults&faultBareEOL == 0 {
		mask |= faultLongLine | faultLoop // lines agree only when they end at CRLF
	}
	if d.faults&mask != faults&mask {
		t.Fatalf("faults %b, want %b, for %q", d.faults, faults, in)
	}
	if d.faults == 0 && !bytes.Equal(rec.buf.Bytes(), body) {
		t.Fatalf("body %q, want %q", rec.buf.Bytes(), body)
	}
	if rec.maxWrite > chunk {
		t.Fatalf("a write of %d octets, buffer %d", rec.maxWrite, chunk)
	}
}

func TestDataReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 998)
	inputs := []string{
		".\r\n",
		"a\r\n.\r\n",
		"a\r\n.\r\nMAIL FROM:<x@y>\r\n",
		"..\r\n.\r\n",
		"...x\r\n.a\r\n.\r\n",
		"a\r\n..\r\n\r\n.\r\n",
		long + "\r\n.\r\n",
		"." + long + "\r\n.\r\n",
		long + "x\r\n.\r\n",
		"a\n.\nb\r\n.\r\n",
		"a\r.\rb\r\n.\r\n",
		"a\r\n.\nb\r\n.\r\n",
		"a\n.\r\nb\r\n.\r\n",
		"a\r\n.\rb\r\n.\r\n",
		"a\r\n.\r\r\n.\r\n",
		"\r\r\n.\r\n",
		"\n.\r\n.\r\n",
		"a\x00\r\n\x00.\r\n.\r\n",
		strings.Repeat("0123456789abcde\r", 3) + "\n.\r\n",
		strings.Repeat("y", 15) + "\r\n.\r\n",
		strings.Repeat("y", 16) + "\r\n.\r\n",
		strings.Repeat("y", 17) + "\r\n.\r\n",
		"unterminated\r\n.",
		"unterminated\r\n.\r",
		"",
		strings.Repeat("line of text\r\n", 200) + ".\r\n",
		"Received: a\r\nreceived: b\r\n.\r\n",
		"Received: a\r\nreceived: b\r\nRECEIVED : c\r\n.\r\n",
		"Received: a\r\n\tReceived: b\r\n Received: c\r\nX: y\r\n.\r\n",
		"Subject: s\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n.\r\n",
		"not a field\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n.\r\n",
		"Received-SPF: a\r\nX-Received: b\r\nReceive: c\r\nReceivedd: d\r\n.\r\n",
		"Received\t\t :a\r\nReceived:b\r\n" + strings.Repeat("x", 30) + "Received: c\r\n.\r\n",
		"Received: " + strings.Repeat("r", 40) + "\r\nReceived: b\r\n..Received: c\r\nReceived: d\r\n.\r\n",
		"Received: a\r\nReceived: b\r\nReceived\r\nReceived: c\r\n.\r\n",
	}
	for _, in := range inputs {
		for _, bufSize := range []int{16, 17, 4096} {
			for _, chunk := range []int{1, 7, chunkSize} {
				checkData(t, []byte(in), bufSize, chunk, 1<<20)
				checkData(t, []byte(in), bufSize, chunk, 5)
			}
		}
	}
}

// TestDataReaderCRSplit puts the CR of CRLF at the end of a full reader
// buffer, so that it is paired across fragments.
func TestDataReaderCRSplit(t *testing.T) {
	t.Parallel()
	for n := 10; n < 40; n++ {
		checkData(t, []byte(strings.Repeat("z", n)+"\r\n.\r\n"), 16, 8, 1<<20)
		checkData(t, []byte(strings.Repeat("z", n)+"\r.\r\n.\r\n"), 16, 8, 1<<20)
		checkData(t, []byte(strings.Repeat("z", n)+"\r\n\n.\r\n"), 16, 8, 1<<20)
	}
}
