package main

import (
	"io"
	"strconv"
	"time"
)

// bodyLine is the text the body is made of: printable, never starting with
// a dot, 76 octets plus CRLF per line (RFC 5322 §2.1.1 recommends ≤ 78).
const bodyLine = "The quick brown fox jumps over the lazy dog. 0123456789 mtaload body text..."

// makeBody returns exactly size octets of CRLF-terminated lines (a last short
// line when size is not a multiple of the line length).
func makeBody(size int) []byte {
	b := make([]byte, 0, size)
	for len(b) < size {
		left := size - len(b)
		switch {
		case left == 1:
			b = append(b, 'x') // the client ends the last line with CRLF
		case left == 2:
			b = append(b, "\r\n"...)
		case left < len(bodyLine)+2:
			b = append(b, bodyLine[:left-2]...)
			b = append(b, "\r\n"...)
		default:
			b = append(b, bodyLine...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// messageID returns the Message-ID of message seq of a run, with brackets.
func messageID(runID string, seq int64) string {
	return string(appendMessageID(nil, runID, seq))
}

func appendMessageID(b []byte, runID string, seq int64) []byte {
	b = append(b, '<')
	b = append(b, runID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, seq, 10)
	return append(b, "@mtaload>"...)
}

// message builds one worker's messages: the header is rewritten in place for
// each message (unique Message-ID), the body is shared and never copied.
// Building and reading a message allocates nothing.
type message struct {
	fixed []byte // "From:" and "Date:" lines, the same for every message
	runID string
	body  []byte // shared by all workers, read-only
	head  []byte // this message's header, reused
	pos   int    // read position over head then body
}

func newMessageTemplate(from string, start time.Time) []byte {
	var b []byte
	b = append(b, "From: <"...)
	b = append(b, from...)
	b = append(b, ">\r\nDate: "...)
	b = start.AppendFormat(b, time.RFC1123Z)
	return append(b, "\r\n"...)
}

// reset prepares message seq to rcpt and returns it as a reader.
func (m *message) reset(seq int64, rcpt string) io.Reader {
	h := append(m.head[:0], m.fixed...)
	h = append(h, "To: <"...)
	h = append(h, rcpt...)
	h = append(h, ">\r\nMessage-ID: "...)
	h = appendMessageID(h, m.runID, seq)
	h = append(h, "\r\nSubject: mtaload "...)
	h = append(h, m.runID...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, seq, 10)
	h = append(h, "\r\n\r\n"...)
	m.head, m.pos = h, 0
	return m
}

// size is the octets of the current message.
func (m *message) size() int { return len(m.head) + len(m.body) }

// Read implements io.Reader over head then body.
func (m *message) Read(p []byte) (int, error) {
	n := 0
	if m.pos < len(m.head) {
		n = copy(p, m.head[m.pos:])
		m.pos += n
		p = p[n:]
	}
	if len(p) > 0 {
		off := m.pos - len(m.head)
		if off >= len(m.body) {
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
		k := copy(p, m.body[off:])
		m.pos += k
		n += k
	}
	return n, nil
}
