package downgrade

import (
	"bytes"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

func convert(t *testing.T, in string) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	conv, err := Convert(&out, strings.NewReader(in))
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return out.String(), conv
}

func qpDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const textBody = "Gr\u00fc\u00dfe aus Shenzhen \u2014 \u4f60\u597d\r\nsecond = line \r\n"

func TestTextPlain8bit(t *testing.T) {
	t.Parallel()
	in := "From: a@a.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\nSubject: hi\r\n\r\n" + textBody
	want := "From: a@a.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Subject: hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Gr=C3=BC=C3=9Fe aus Shenzhen =E2=80=94 =E4=BD=A0=E5=A5=BD\r\nsecond =3D line=20\r\n"
	got, conv := convert(t, in)
	if got != want || !conv {
		t.Fatalf("converted %v\n got %q\nwant %q", conv, got, want)
	}
	_, body, _ := strings.Cut(got, "\r\n\r\n")
	if d := qpDecode(t, body); d != textBody {
		t.Fatalf("decoded %q, want %q", d, textBody)
	}
}

func TestUndeclared8bitAndNonMIME(t *testing.T) {
	t.Parallel()
	in := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + textBody
	got, _ := convert(t, in)
	want := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("undeclared: %q", got)
	}
	got, _ = convert(t, "Subject: x\r\n\r\n"+textBody)
	want = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("non-MIME: %q", got)
	}
}

const mixed = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	"preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
	"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + textBody +
	"--inner\r\nContent-Type: text/html\r\n\r\n<p>seven bit</p>\r\n--inner--\r\n" +
	"--outer\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--outer--\r\nepilogue\r\n"

func TestMultipartConvertsOnlyTheTextPart(t *testing.T) {
	t.Parallel()
	got, conv := convert(t, mixed)
	want := strings.Replace(mixed, "Content-Transfer-Encoding: 8bit\r\n\r\npreamble", "Content-Transfer-Encoding: 7bit\r\n\r\npreamble", 1)
	want = strings.Replace(want, "Content-Transfer-Encoding: 8bit\r\n\r\n"+textBody,
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus Shenzhen =E2=80=94 =E4=BD=A0=E5=A5=BD\r\nsecond =3D line=20\r\n", 1)
	if got != want || !conv {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestNotConvertible(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"8-bit header":                "Subject: Gr\u00fc\u00dfe\r\n\r\nbody\r\n",
		"binary":                      "MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\u00fc\r\n",
		"message/rfc822 8-bit header": "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: \u00fc\r\n\r\nx\r\n",
		"message/global":              "MIME-Version: 1.0\r\nContent-Type: message/global\r\n\r\nSubject: x\r\n\r\n\u00fc\r\n",
		"8-bit image":                 "MIME-Version: 1.0\r\nContent-Type: image/png\r\n\r\n\u00fc\r\n",
		"no boundary":                 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n\u00fc\r\n",
		"bad type":                    "MIME-Version: 1.0\r\nContent-Type: text/plain; =\r\n\r\n\u00fc\r\n",
		"unclosed":                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\u00fc\r\n",
		"8-bit preamble":              "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\u00fc\r\n--b\r\n\r\nx\r\n--b--\r\n",
	} {
		_, err := Convert(io.Discard, strings.NewReader(in))
		if !errors.Is(err, ErrNotConvertible) {
			t.Errorf("%s: %v, want ErrNotConvertible", name, err)
		}
	}
}

func TestSevenBitUnchanged(t *testing.T) {
	t.Parallel()
	in := strings.ReplaceAll(strings.ReplaceAll(mixed, "Content-Transfer-Encoding: 8bit\r\n", ""), textBody, "plain text\r\n")
	got, conv := convert(t, in)
	if got != in || conv {
		t.Fatalf("converted %v: %q", conv, got)
	}
}

// TestForwardedMessageConverted: a message/rfc822 part (a forwarded
// message, or the original in a RET=FULL bounce) is converted inside, as
// Postfix does: its 8-bit text part becomes quoted-printable and the
// part's 8bit label 7bit; the rest is unchanged.
func TestForwardedMessageConverted(t *testing.T) {
	t.Parallel()
	const inner = "From: a@x.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	in := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		inner + "Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n--b--\r\n"
	want := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		inner + "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n--b--\r\n"
	got, conv := convert(t, in)
	if got != want || !conv {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
