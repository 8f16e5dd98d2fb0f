package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLineLen is the longest line we send as 7bit; RFC 5322 §2.1.1 allows 998
// octets, we keep well under it and use quoted-printable otherwise.
const maxLineLen = 998

// draft is a message as the user wrote it.
type draft struct {
	From        string   // the -e address
	To          []string // envelope recipients (bare addresses)
	ToHeader    []string // as typed, for the To: header
	Subject     string
	Body        string
	Attachments []attachment
	Date        time.Time
}

type attachment struct {
	Name string // file base name
	Data []byte
}

// parseRecipient accepts "user@domain" or "Name <user@domain>" and returns the
// envelope address and the header form.
func parseRecipient(s string) (addr, header string, err error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return "", "", fmt.Errorf("%q is not an email address", s)
	}
	return a.Address, formatAddr(a), nil
}

// formatAddr writes a bare address when there is no display name.
func formatAddr(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.String()
}

// compose renders d as an RFC 5322 / MIME message with CRLF line endings:
// text/plain UTF-8, or multipart/mixed with the attachments.
func compose(d *draft) ([]byte, error) {
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	from := d.From
	if a, err := mail.ParseAddress(d.From); err == nil {
		from = formatAddr(a)
	}
	h("From", from)
	h("To", foldList(d.ToHeader))
	h("Subject", mime.QEncoding.Encode("utf-8", oneLineHeader(d.Subject)))
	h("Date", d.Date.Format(time.RFC1123Z))
	h("Message-ID", messageID(d.From))
	h("MIME-Version", "1.0")
	body := normalizeNewlines(d.Body)
	if len(d.Attachments) == 0 {
		cte, enc := encodeText(body)
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", cte)
		b.WriteString("\r\n")
		b.Write(enc)
		return b.Bytes(), nil
	}
	var parts bytes.Buffer
	mw := multipart.NewWriter(&parts)
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\nThis is a multi-part message in MIME format.\r\n")
	cte, enc := encodeText(body)
	tp := textproto.MIMEHeader{}
	tp.Set("Content-Type", "text/plain; charset=utf-8")
	tp.Set("Content-Transfer-Encoding", cte)
	w, err := mw.CreatePart(tp)
	if err != nil {
		return nil, err
	}
	w.Write(enc)
	for _, a := range d.Attachments {
		ph := textproto.MIMEHeader{}
		ct := mime.TypeByExtension(filepath.Ext(a.Name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		ph.Set("Content-Type", ct)
		ph.Set("Content-Transfer-Encoding", "base64")
		ph.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
		w, err := mw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		w.Write(base64Lines(a.Data))
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.Write(parts.Bytes())
	return b.Bytes(), nil
}

// encodeText picks 7bit for short-lined ASCII, quoted-printable otherwise, and
// returns the encoded body ending in CRLF.
func encodeText(s string) (cte string, enc []byte) {
	if !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	plain := true
	for _, line := range strings.Split(s, "\r\n") {
		if len(line) > maxLineLen-2 {
			plain = false
			break
		}
	}
	for i := 0; plain && i < len(s); i++ {
		if s[i] >= 0x80 || (s[i] < 0x20 && s[i] != '\r' && s[i] != '\n' && s[i] != '\t') {
			plain = false
		}
	}
	if plain {
		return "7bit", []byte(s)
	}
	var b bytes.Buffer
	qw := quotedprintable.NewWriter(&b)
	qw.Write([]byte(s)) // bytes.Buffer writes do not fail
	qw.Close()
	return "quoted-printable", b.Bytes()
}

// base64Lines encodes data in 76-character lines (RFC 2045 §6.8).
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		b.WriteString(enc + "\r\n")
	}
	return b.Bytes()
}

// foldList joins addresses for a header, folding (RFC 5322 §2.2.3) so lines
// stay near 78 characters.
func foldList(addrs []string) string {
	var b strings.Builder
	lineLen := len("To: ")
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(",")
			lineLen++
			if lineLen+1+len(a) > 78 {
				b.WriteString("\r\n")
				lineLen = 0
			}
			b.WriteString(" ")
			lineLen++
		}
		b.WriteString(a)
		lineLen += len(a)
	}
	return b.String()
}

// messageID makes a unique <random@domain-of-sender>.
func messageID(from string) string {
	var r [12]byte
	rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	dom := "localhost"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		dom = strings.Trim(from[at+1:], "<> ")
	}
	return "<" + hex.EncodeToString(r[:]) + "@" + dom + ">"
}

// normalizeNewlines turns every line ending into CRLF and drops invalid UTF-8.
func normalizeNewlines(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// oneLineHeader keeps a header value on one line (no header injection).
func oneLineHeader(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
}
