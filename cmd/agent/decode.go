package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Bounds on what we take apart for display: a hostile message must not make
// the agent recurse or allocate without limit.
const (
	maxDepth = 8   // nested multiparts
	maxParts = 200 // parts in one message
)

// shown is a message decoded for a person.
type shown struct {
	From, To, Cc, Date, Subject string
	Body                        string      // text parts, decoded, joined
	Attachments                 []shownPart // everything not shown inline
}

type shownPart struct {
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
	Size int    `json:"size"` // decoded octets
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader knows the charsets Go can convert without extra modules;
// others make the decoder keep the encoded word as it is.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(latin1(b)), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", charset)
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// decodeHeader decodes RFC 2047 words; on failure the raw value is kept.
func decodeHeader(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		d = v
	}
	return strings.TrimSpace(strings.ToValidUTF8(d, "\uFFFD"))
}

// decodeMessage takes a raw message apart for display. It never fails: what
// cannot be parsed is shown raw.
func decodeMessage(raw []byte) *shown {
	m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return &shown{Body: strings.ToValidUTF8(string(raw), "\uFFFD")}
	}
	s := &shown{
		From:    decodeHeader(m.Header.Get("From")),
		To:      decodeHeader(m.Header.Get("To")),
		Cc:      decodeHeader(m.Header.Get("Cc")),
		Date:    decodeHeader(m.Header.Get("Date")),
		Subject: decodeHeader(m.Header.Get("Subject")),
	}
	var texts []string
	n := 0
	walkPart(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), "", m.Body, 0, &n, &texts, &s.Attachments)
	s.Body = strings.Join(texts, "\n\n")
	return s
}

// walkPart decodes one MIME entity: text is appended to texts, anything else
// is listed in atts.
func walkPart(ctype, cte, disposition string, body io.Reader, depth int, n *int, texts *[]string, atts *[]shownPart) {
	*n++
	if *n > maxParts {
		return
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if ctype == "" || err != nil {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	data := decodeTransfer(cte, body)
	disp, dparams, _ := mime.ParseMediaType(disposition)
	name := decodeHeader(dparams["filename"])
	if name == "" {
		name = decodeHeader(params["name"])
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < maxDepth:
		walkMultipart(mt, params["boundary"], data, depth, n, texts, atts)
	case disp != "attachment" && mt == "text/plain":
		*texts = append(*texts, toUTF8(params["charset"], data))
	case disp != "attachment" && (mt == "message/delivery-status" || mt == "message/global-delivery-status"):
		*texts = append(*texts, "---- delivery status ----\n"+toUTF8("utf-8", data))
	case disp != "attachment" && mt == "text/rfc822-headers":
		*texts = append(*texts, "---- headers of the returned message ----\n"+toUTF8("utf-8", data))
	case mt == "message/rfc822" && disp != "attachment" && depth < maxDepth:
		inner := decodeMessage(data)
		*texts = append(*texts, "---- attached message ----\n"+inner.summary()+"\n"+inner.Body)
		*atts = append(*atts, inner.Attachments...)
	default:
		*atts = append(*atts, shownPart{Name: name, Type: mt, Size: len(data)})
	}
}

func walkMultipart(mt, boundary string, data []byte, depth int, n *int, texts *[]string, atts *[]shownPart) {
	mr := multipart.NewReader(bytes.NewReader(data), boundary)
	type part struct {
		ctype, cte, disp string
		data             []byte
	}
	var parts []part
	for len(parts) < maxParts {
		p, err := mr.NextRawPart() // raw: we decode the transfer encoding ourselves
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, part{p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), b})
	}
	if mt == "multipart/alternative" {
		// Show the plain text version when there is one (RFC 2046 §5.1.4: the
		// last part is the richest, the plain one is what we can show).
		for _, p := range parts {
			if t, _, _ := mime.ParseMediaType(p.ctype); t == "text/plain" || p.ctype == "" {
				walkPart(p.ctype, p.cte, p.disp, bytes.NewReader(p.data), depth+1, n, texts, atts)
				return
			}
		}
	}
	for _, p := range parts {
		walkPart(p.ctype, p.cte, p.disp, bytes.NewReader(p.data), depth+1, n, texts, atts)
	}
}

// decodeTransfer undoes base64 / quoted-printable; a broken encoding is shown as sent.
func decodeTransfer(cte string, body io.Reader) []byte {
	raw, _ := io.ReadAll(body)
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: bytes.NewReader(raw)})
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(raw))
	default:
		return raw
	}
	out, err := io.ReadAll(r)
	if err != nil && len(out) == 0 {
		return raw
	}
	return out
}

// newlineStripper drops CR, LF and spaces so base64 lines decode as one.
type newlineStripper struct{ r io.Reader }

func (s *newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// toUTF8 converts text in a charset to UTF-8, with CRLF turned into LF.
func toUTF8(charset string, b []byte) string {
	var s string
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "latin-1":
		s = latin1(b)
	default:
		s = string(b)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.TrimRight(s, "\n")
}

// summary is the header block shown above the body.
func (s *shown) summary() string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-9s%s\n", k+":", v)
		}
	}
	line("From", s.From)
	line("To", s.To)
	line("Cc", s.Cc)
	line("Date", s.Date)
	line("Subject", s.Subject)
	return strings.TrimRight(b.String(), "\n")
}

// String is the whole message as shown by retr.
func (s *shown) String() string {
	var b strings.Builder
	b.WriteString(s.summary())
	b.WriteString("\n\n")
	b.WriteString(s.Body)
	for _, a := range s.Attachments {
		b.WriteString("\n[attachment")
		if a.Name != "" {
			b.WriteString(" " + a.Name)
		}
		fmt.Fprintf(&b, ": %s, %d bytes]", a.Type, a.Size)
	}
	return b.String()
}
