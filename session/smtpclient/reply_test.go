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
