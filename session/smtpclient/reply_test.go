package smtpclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		code int
		enh  string
		text string
		err  bool // a *ProtocolError or a read error
	}{
		{"single", "250 ok\r\n", 250, "", "ok", false},
		{"bare code", "250\r\n", 250, "", "", false},
		{"enhanced", "550 5.1.1 no such user\r\n", 550, "5.1.1", "no such user", false},
		{"enhanced alone", "250 2.0.0\r\n", 250, "2.0.0", "", false},
		{"enhanced three digits", "550 5.7.100 nope\r\n", 550, "5.7.100", "nope", false},
		{"class mismatch kept as text", "550 4.1.1 odd\r\n", 550, "", "4.1.1 odd", false},
		{"not enhanced", "250 2.0 is a version\r\n", 250, "", "2.0 is a version", false},
		{"too many digits", "550 5.1111.1 x\r\n", 550, "", "5.1111.1 x", false},
		{"multi", "250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 250, "", "mx.test hello\nPIPELINING\nSIZE 100", false},
		{"multi enhanced", "550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n", 550, "5.1.1", "first\nsecond\nthird", false},
		{"bare LF lines", "451-4.3.0 a\n451 4.3.0 b\n", 451, "4.3.0", "a\nb", false},
		{"code changes", "250-a\r\n251 b\r\n", 0, "", "", true},
		{"bad code", "abc hello\r\n", 0, "", "", true},
		{"code 6xx", "600 x\r\n", 0, "", "", true},
		{"bad separator", "250*x\r\n", 0, "", "", true},
		{"eof mid reply", "250-a\r\n", 0, "", "", true},
		{"eof mid line", "250 a", 0, "", "", true},
		{"too long", "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", 0, "", "", true},
		{"too many lines", strings.Repeat("250-x\r\n", maxReplyLines+1) + "250 x\r\n", 0, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rb replyBuf
			r := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(tt.in)), maxReplyLine)
			err := readReply(r, &rb)
			if tt.err {
				if err == nil {
					t.Fatalf("got code %d text %q, want an error", rb.code, rb.text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := rb.reply()
			if got.Code != tt.code || got.Enhanced != tt.enh || got.Text != tt.text {
				t.Fatalf("got %d %q %q, want %d %q %q", got.Code, got.Enhanced, got.Text, tt.code, tt.enh, tt.text)
			}
		})
	}
}

func TestReadReplyErrorKinds(t *testing.T) {
	t.Parallel()
	var rb replyBuf
	err := readReply(bufio.NewReader(strings.NewReader("250-a\r\n")), &rb)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want io.EOF at a line boundary", err)
	}
	err = readReply(bufio.NewReader(strings.NewReader("250 a")), &rb)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF mid line", err)
	}
	var pe *ProtocolError
	err = readReply(bufio.NewReader(strings.NewReader("hello\r\n")), &rb)
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want *ProtocolError", err)
	}
}

func TestStuffer(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, out string }{
		{"empty", "", ".\r\n"},
		{"one line no EOL", "hello", "hello\r\n.\r\n"},
		{"crlf", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare CR", "a\rb", "a\r\nb\r\n.\r\n"},
		{"trailing CR", "a\r", "a\r\n.\r\n"},
		{"leading dot", ".hidden\r\n", "..hidden\r\n.\r\n"},
		{"dots", "a\r\n.\r\n..\r\n.x\n", "a\r\n..\r\n...\r\n..x\r\n.\r\n"},
		{"dot not at line start", "a.b\r\n", "a.b\r\n.\r\n"},
		{"smuggling LF", "a\n.\nMAIL FROM:<x>\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
		{"smuggling CR", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
		{"blank lines", "\r\n\n\r\n", "\r\n\r\n\r\n.\r\n"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 1 << 10} {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			s := stuffer{w: w, lineStart: true}
			for in := tt.in; len(in) > 0; {
				n := min(chunk, len(in))
				s.write([]byte(in[:n]))
				in = in[n:]
			}
			s.finish()
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.out {
				t.Errorf("%s (chunk %d): got %q, want %q", tt.name, chunk, out.String(), tt.out)
			}
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "550-5.1.1 a\r\n550 5.1.1 b\r\n", "250\r\n", "2", "250-\n250 \n", "421 4.7.0 x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var rb replyBuf
		err := readReply(bufio.NewReaderSize(bytes.NewReader(in), maxReplyLine), &rb)
		if err != nil {
			return
		}
		if rb.code < 200 || rb.code > 599 {
			t.Fatalf("code %d out of range", rb.code)
		}
		if r := rb.reply(); r.Enhanced != "" && int(r.Enhanced[0]-'0') != r.Code/100 {
			t.Fatalf("enhanced %q does not match code %d", r.Enhanced, r.Code)
		}
	})
}

// FuzzStuffer checks that undoing the dot-stuffing gives back the input with
// line endings made CRLF, and that the end marker appears only at the end.
func FuzzStuffer(f *testing.F) {
	for _, s := range []string{"", ".", "a\n.\nb", "\r\n.\r\n", "a\r\r\n..\n", "x\r"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		s := stuffer{w: w, lineStart: true}
		step := int(chunk) + 1
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			s.write(p[:n])
			p = p[n:]
		}
		s.finish()
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		got := out.Bytes()
		if !bytes.HasSuffix(got, []byte(".\r\n")) || (len(got) > 3 && !bytes.HasSuffix(got, []byte("\r\n.\r\n"))) {
			t.Fatalf("bad end: %q", got)
		}
		content := got[:len(got)-3]
		if bytes.Contains(content, []byte("\r\n.\r\n")) || bytes.HasPrefix(content, []byte(".\r\n")) {
			t.Fatalf("end marker inside content: %q", got)
		}
		// Every CR is followed by LF and every LF preceded by CR.
		for i, b := range content {
			if b == '\r' && (i+1 >= len(content) || content[i+1] != '\n') {
				t.Fatalf("bare CR at %d: %q", i, got)
			}
			if b == '\n' && (i == 0 || content[i-1] != '\r') {
				t.Fatalf("bare LF at %d: %q", i, got)
			}
		}
		// Unstuff and compare with the normalised input.
		var un []byte
		for line := range bytes.SplitAfterSeq(content, []byte("\r\n")) {
			un = append(un, bytes.TrimPrefix(line, []byte("."))...)
		}
		norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\n"), []byte("\r\n"))
		if len(norm) > 0 && !bytes.HasSuffix(norm, []byte("\r\n")) {
			norm = append(norm, '\r', '\n')
		}
		if !bytes.Equal(un, norm) {
			t.Fatalf("unstuffed %q, want %q", un, norm)
		}
	})
}
