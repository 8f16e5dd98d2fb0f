package smtpclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"gomta/session/reply"
)

// Reply limits. RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets including
// CRLF; real servers exceed it (long EHLO keywords, banners), so we allow more
// but stay bounded. maxReplyLines bounds a multi-line reply (EHLO lists are
// the longest in practice, a few dozen lines).
const (
	maxReplyLine  = 4096
	maxReplyLines = 256
	maxReplyText  = 64 << 10
)

// ProtocolError is a reply the client could not make sense of (bad code,
// over-long line, inconsistent multi-line reply). The connection is closed
// after one: the client can no longer tell where the next reply starts.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "smtpclient: protocol error: " + e.Msg }

// Temporary reports true: a confused peer is worth another try later.
func (e *ProtocolError) Temporary() bool { return true }

// replyBuf holds the last reply read, reused across commands so that the hot
// path (positive replies) allocates nothing. text holds the lines joined by
// '\n' with the code and any enhanced code stripped; enh the enhanced code of
// the first line ("" when absent).
type replyBuf struct {
	code int
	enh  []byte
	text []byte
}

// reply turns the buffer into a fresh *reply.Reply (allocates; used for
// negative replies and for the final DATA reply).
func (rb *replyBuf) reply() *reply.Reply {
	return &reply.Reply{Code: rb.code, Enhanced: string(rb.enh), Text: string(rb.text)}
}

// readReply reads one single- or multi-line reply (RFC 5321 §4.2.1) into rb.
// Every line must carry the same code; "ddd-" continues, "ddd " or a bare
// "ddd" ends the reply. An enhanced status code (RFC 3463, RFC 2034 §3) is
// recognised at the start of each line's text when its class digit matches
// the reply's, and stripped from the text.
func readReply(r *bufio.Reader, rb *replyBuf) error {
	rb.code = 0
	rb.enh = rb.enh[:0]
	rb.text = rb.text[:0]
	for n := 0; n < maxReplyLines; n++ {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return &ProtocolError{Msg: "reply line too long"}
			}
			if len(line) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		line = trimEOL(line)
		code, more, text, perr := splitReplyLine(line)
		if perr != nil {
			return perr
		}
		if n == 0 {
			rb.code = code
		} else if code != rb.code {
			return &ProtocolError{Msg: fmt.Sprintf("multi-line reply changes code from %d to %d", rb.code, code)}
		}
		if enh, rest, ok := cutEnhanced(text, code); ok {
			if n == 0 {
				rb.enh = append(rb.enh, enh...)
			}
			text = rest
		}
		if n > 0 {
			rb.text = append(rb.text, '\n')
		}
		if len(rb.text)+len(text) > maxReplyText {
			return &ProtocolError{Msg: "reply too long"}
		}
		rb.text = append(rb.text, text...)
		if !more {
			return nil
		}
	}
	return &ProtocolError{Msg: "too many reply lines"}
}

// trimEOL removes a trailing LF and an optional CR before it.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

// splitReplyLine parses "ddd", "ddd text" or "ddd-text".
func splitReplyLine(line []byte) (code int, more bool, text []byte, err error) {
	if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) ||
		line[0] < '2' || line[0] > '5' {
		return 0, false, nil, &ProtocolError{Msg: "bad reply line " + strconv.Quote(clip(line))}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, nil, nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, nil, &ProtocolError{Msg: "bad reply line " + strconv.Quote(clip(line))}
}

// cutEnhanced splits "c.sss.ddd rest" (RFC 3463 §2: class 2, 4 or 5 matching
// the reply code's first digit, subject and detail of 1-3 digits) off text.
func cutEnhanced(text []byte, code int) (enh, rest []byte, ok bool) {
	if len(text) < 5 || int(text[0]-'0') != code/100 || text[1] != '.' {
		return nil, text, false
	}
	i := 2
	for part := 0; part < 2; part++ {
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if j == i || j-i > 3 {
			return nil, text, false
		}
		i = j
		if part == 0 {
			if i >= len(text) || text[i] != '.' {
				return nil, text, false
			}
			i++
		}
	}
	switch {
	case i == len(text):
		return text[:i], text[i:], true
	case text[i] == ' ':
		return text[:i], text[i+1:], true
	}
	return nil, text, false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// clip shortens a line for an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
