package dotstuff

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestWriter(t *testing.T) {
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
		{"run then dot", "a\r\nb\r\n.c\r\nd", "a\r\nb\r\n..c\r\nd\r\n.\r\n"},
		{"run then bare CR", "a\r\nb\rc\r\n", "a\r\nb\r\nc\r\n.\r\n"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 1 << 10} {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			s := NewWriter(w)
			for in := tt.in; len(in) > 0; {
				n := min(chunk, len(in))
				s.Write([]byte(in[:n]))
				in = in[n:]
			}
			s.Close()
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.out {
				t.Errorf("%s (chunk %d): got %q, want %q", tt.name, chunk, out.String(), tt.out)
			}
		}
	}
}

// FuzzWriter checks that undoing the dot-stuffing gives back the input with
// line endings made CRLF, and that the end marker appears only at the end.
func FuzzWriter(f *testing.F) {
	for _, s := range []string{"", ".", "a\n.\nb", "\r\n.\r\n", "a\r\r\n..\n", "x\r"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		s := NewWriter(w)
		step := int(chunk) + 1
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			s.Write(p[:n])
			p = p[n:]
		}
		s.Close()
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

// TestWriterError: the Target's first error is returned and sticks.
func TestWriterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	w := bufio.NewWriterSize(failWriter{boom}, 16)
	s := NewWriter(w)
	var err error
	for range 10 {
		if _, err = s.Write([]byte("line\r\n.dot\r\n")); err != nil {
			break
		}
	}
	if !errors.Is(err, boom) || !errors.Is(s.Close(), boom) || !errors.Is(s.Err(), boom) {
		t.Fatalf("Write %v, Close/Err %v; want %v", err, s.Err(), boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// BenchmarkWriter stuffs a 100 KiB message of 78-octet lines (a RETR).
func BenchmarkWriter(b *testing.B) {
	line := bytes.Repeat([]byte("x"), 76)
	var msg []byte
	for len(msg) < 100<<10 {
		msg = append(msg, line...)
		msg = append(msg, '\r', '\n')
	}
	w := bufio.NewWriterSize(io.Discard, 4<<10)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		s := NewWriter(w)
		for p := msg; len(p) > 0; p = p[min(len(p), 32<<10):] {
			s.Write(p[:min(len(p), 32<<10)])
		}
		s.Close()
	}
}
