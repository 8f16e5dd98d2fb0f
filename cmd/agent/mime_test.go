package main

import (
	"bufio"
	"bytes"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func TestComposeHeaders(t *testing.T) {
	t.Parallel()
	msg, err := compose(&draft{
		From: alice, To: []string{bob, "c@other.test"}, ToHeader: []string{bob, `"Zoë" <c@other.test>`},
		Subject: "Grüße\r\nBcc: evil@x.test", Body: "hello\nworld", Date: testDate,
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("bare LF in %q", msg)
	}
	m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"From":                      alice,
		"Date":                      "Tue, 04 Mar 2025 05:06:07 +0000",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "7bit",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get("Bcc") != "" {
		t.Errorf("subject injected a header: %q", msg)
	}
	if id := m.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.test>") {
		t.Errorf("Message-ID = %q", id)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[1].Name != "Zoë" || to[1].Address != "c@other.test" {
		t.Errorf("To = %v, %v", to, err)
	}
	if s := decodeHeader(m.Header.Get("Subject")); s != "Grüße Bcc: evil@x.test" {
		t.Errorf("Subject decodes to %q", s)
	}
	if strings.ContainsAny(m.Header.Get("Subject"), "üß") {
		t.Errorf("Subject not RFC 2047 encoded: %q", m.Header.Get("Subject"))
	}
}

func TestComposeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1200)
	tests := []struct {
		name, body, cte string
		atts            []attachment
	}{
		{"ascii", "hello\n.\nbye", "7bit", nil},
		{"utf8", "你好，世界\nçà et là", "quoted-printable", nil},
		{"long line", long, "quoted-printable", nil},
		{"attachments", "see attached", "7bit", []attachment{{Name: "notes.txt", Data: []byte("plain notes")}, {Name: "blob.bin", Data: bytes.Repeat([]byte{0, 1, 2, 255}, 100)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := compose(&draft{From: alice, To: []string{bob}, ToHeader: []string{bob}, Subject: "s", Body: tc.body, Date: testDate, Attachments: tc.atts})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(msg, []byte("Content-Transfer-Encoding: "+tc.cte+"\r\n")) {
				t.Errorf("want CTE %s in:\n%s", tc.cte, msg)
			}
			for _, line := range bytes.Split(msg, []byte("\r\n")) {
				if len(line) > 998 {
					t.Fatalf("line of %d octets", len(line))
				}
			}
			s := decodeMessage(msg)
			if s.Body != tc.body {
				t.Errorf("body = %q, want %q", s.Body, tc.body)
			}
			if s.From != alice || s.To != bob || s.Subject != "s" {
				t.Errorf("headers = %+v", s)
			}
			if len(s.Attachments) != len(tc.atts) {
				t.Fatalf("attachments = %+v", s.Attachments)
			}
			for i, a := range tc.atts {
				if s.Attachments[i].Name != a.Name || s.Attachments[i].Size != len(a.Data) {
					t.Errorf("attachment %d = %+v, want %s of %d bytes", i, s.Attachments[i], a.Name, len(a.Data))
				}
			}
		})
	}
}

func TestFoldList(t *testing.T) {
	t.Parallel()
	var addrs []string
	for range 10 {
		addrs = append(addrs, "someone.with.a.long.name@example.test")
	}
	got := foldList(addrs)
	for _, line := range strings.Split(got, "\r\n") {
		if len(line) > 78 {
			t.Errorf("folded line of %d chars: %q", len(line), line)
		}
	}
	if strings.ReplaceAll(got, "\r\n", "") != strings.Join(addrs, ", ") {
		t.Errorf("unfolded = %q", got)
	}
}

const bounceMsg = "From: MAILER-DAEMON@mx.b.test\r\n" +
	"To: alice@example.test\r\n" +
	"Subject: =?utf-8?q?Undelivered_Mail=3A_caf=C3=A9?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n" +
	"\r\n" +
	"--BB\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"WW91ciBtZXNzYWdlIGNvdWxkIG5vdCBi\r\nZSBkZWxpdmVyZWQu\r\n" +
	"--BB\r\n" +
	"Content-Type: message/delivery-status\r\n" +
	"\r\n" +
	"Reporting-MTA: dns; mx.b.test\r\n\r\nFinal-Recipient: rfc822; nobody@b.test\r\nStatus: 5.1.1\r\n" +
	"--BB\r\n" +
	"Content-Type: text/rfc822-headers\r\n" +
	"\r\n" +
	"Subject: hi\r\n" +
	"--BB--\r\n"

func TestDecodeForDisplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		subject   string
		body      []string // substrings, in order
		atts      int
	}{
		{"bounce", bounceMsg, "Undelivered Mail: café",
			[]string{"Your message could not be delivered.", "Final-Recipient: rfc822; nobody@b.test", "Subject: hi"}, 0},
		{"qp latin1", "Subject: =?iso-8859-1?q?r=E9sum=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu=\r\n, soft break\r\n", "résumé", []string{"déjà vu, soft break"}, 0},
		{"alternative", "Subject: alt\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n" +
			"Content-Type: text/plain\r\n\r\nplain version\r\n--x\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--x--\r\n",
			"alt", []string{"plain version"}, 0},
		{"no headers body", "no colon here\r\n", "", []string{"no colon here"}, 0},
		{"unknown charset word kept", "Subject: =?x-unknown?q?abc?=\r\n\r\nb\r\n", "=?x-unknown?q?abc?=", []string{"b"}, 0},
		{"broken base64 shown raw", "Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n", "", []string{"!!!notbase64"}, 0},
		{"image attachment", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: image/png; name=\"=?utf-8?q?f=C3=B6o.png?=\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--q--\r\n", "", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := decodeMessage([]byte(tc.raw))
			if s.Subject != tc.subject {
				t.Errorf("subject = %q, want %q", s.Subject, tc.subject)
			}
			rest := s.Body
			for _, want := range tc.body {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("body %q lacks %q (in order)", s.Body, want)
				}
				rest = rest[i+len(want):]
			}
			if len(s.Attachments) != tc.atts {
				t.Errorf("attachments = %+v, want %d", s.Attachments, tc.atts)
			}
		})
	}
	s := decodeMessage([]byte("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: image/png; name=\"=?utf-8?q?f=C3=B6o.png?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--q--\r\n"))
	if got := s.String(); !strings.Contains(got, "[attachment föo.png: image/png, 3 bytes]") {
		t.Errorf("String() = %q", got)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := range 50 {
		b.WriteString("--b" + itoa(i) + "\r\nContent-Type: multipart/mixed; boundary=b" + itoa(i+1) + "\r\n\r\n")
	}
	b.WriteString("deep\r\n")
	s := decodeMessage([]byte(b.String())) // must return, bounded
	// maxDepth levels are taken apart; the multipart below them is listed
	// as an attachment, not walked.
	if len(s.Attachments) != 1 || s.Attachments[0].Type != "multipart/mixed" {
		t.Errorf("attachments = %+v, want the one multipart/mixed below the depth limit", s.Attachments)
	}
	if out := s.String(); !strings.Contains(out, "multipart/mixed") {
		t.Errorf("String() does not list the undecoded part: %q", out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(bounceMsg))
	f.Add([]byte("Subject: =?utf-8?b?w6k=?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9=\r\n"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n\r\na\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 1<<16 {
			return
		}
		s := decodeMessage(raw)
		out := s.String()
		if !strings.Contains(out, s.Body) {
			t.Fatalf("String() lost the body")
		}
	})
}
