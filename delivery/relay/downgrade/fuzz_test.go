package downgrade

import (
	"bytes"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// FuzzDowngrade checks Convert's invariants on any input: the output is
// 7bit data, converting it again changes nothing, 7bit input without 8bit
// or binary labels comes out unchanged, and a single-part message's
// quoted-printable body decodes to the original body.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte(mixed))
	f.Add([]byte("Subject: x\r\n\r\n" + textBody))
	f.Add([]byte("MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + textBody))
	f.Add([]byte("Subject: x\n\nbare \xff lf\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		_, err := Convert(&out, bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrNotConvertible) {
				t.Fatalf("error %v", err)
			}
			return
		}
		got := out.Bytes()
		for _, line := range bytes.SplitAfter(got, []byte("\n")) {
			if !sevenBit(line) {
				t.Fatalf("output line not 7bit: %q", line)
			}
		}
		var again bytes.Buffer
		if _, err := Convert(&again, bytes.NewReader(got)); err != nil || !bytes.Equal(again.Bytes(), got) {
			t.Fatalf("second conversion: %v\n%q\n%q", err, got, again.Bytes())
		}
		if plain7(in) && !bytes.Equal(got, in) {
			t.Fatalf("7bit input changed:\n%q\n%q", in, got)
		}
		checkDecodes(t, in, got)
	})
}

// plain7 reports whether in is 7bit data with no part labelled 8bit or binary.
func plain7(in []byte) bool {
	for _, line := range bytes.SplitAfter(in, []byte("\n")) {
		if !sevenBit(line) {
			return false
		}
	}
	l := strings.ToLower(string(in))
	return !strings.Contains(l, "8bit") && !strings.Contains(l, "binary")
}

// checkDecodes compares the body of a message whose whole body was
// re-encoded (a non-MIME message, or a single text part) with the original,
// line ends made CRLF as SMTP carries them.
func checkDecodes(t *testing.T, in, got []byte) {
	hin, bin, ok1 := split(in)
	hgot, bgot, ok2 := split(got)
	if !ok1 || !ok2 || !bytes.Contains(hgot, []byte("Content-Transfer-Encoding: quoted-printable")) ||
		bytes.Contains(bytes.ToLower(hin), []byte("multipart")) || bytes.Contains(bytes.ToLower(hin), []byte("quoted-printable")) {
		return
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(bgot)))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if crlf(dec) != crlf(bin) {
		t.Fatalf("decoded %q, want %q", dec, bin)
	}
}

func crlf(b []byte) string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return strings.TrimRight(s, "\n")
}

// split cuts a message at the empty line that ends its header.
func split(m []byte) (head, body []byte, ok bool) {
	off := 0
	for _, line := range bytes.SplitAfter(m, []byte("\n")) {
		off += len(line)
		if len(trimEOL(line)) == 0 && bytes.HasSuffix(line, []byte("\n")) {
			return m[:off-len(line)], m[off:], true
		}
	}
	return nil, nil, false
}
