package smtpclient

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// bodyChunk is how much of the body is read at a time. Buffers are pooled so
// that thousands of load-generator clients do not each keep one.
const bodyChunk = 16 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, bodyChunk); return &b }}

// writeBody streams body as the DATA content (RFC 5321 §4.1.1.4): lines that
// start with "." get another "." (§4.5.2), bare LF and bare CR become CRLF
// (§2.3.8: they must not be sent), and the content ends with CRLF.CRLF. It is
// never buffered whole; the write deadline is renewed per chunk so that a
// long body is bounded per block, not as a whole (§4.5.3.2.5).
//
// When reading the body fails the connection is closed without the final
// dot, so the server discards the partial message.
func (c *Client) writeBody(body io.Reader) error {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	s := stuffer{w: c.w, lineStart: true}
	empty := 0 // consecutive (0, nil) reads; io.Reader discourages them, bufio gives up after 100
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			empty = 0
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.opt.Timeout))
			s.write(buf[:n])
			if err := s.err(); err != nil {
				return c.fail(err)
			}
		}
		switch {
		case rerr == io.EOF:
		case rerr != nil:
			return c.fail(fmt.Errorf("reading message body: %w", rerr))
		case n == 0:
			if empty++; empty > 100 {
				return c.fail(fmt.Errorf("reading message body: %w", io.ErrNoProgress))
			}
			continue
		default:
			continue
		}
		break
	}
	s.finish()
	if err := s.err(); err != nil {
		return c.fail(err)
	}
	return nil
}

// byteWriter is what the stuffer writes to (a *bufio.Writer).
type byteWriter interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// stuffer carries the line state of dot-stuffing across chunks.
type stuffer struct {
	w         byteWriter
	lineStart bool  // next byte starts a line
	pendingCR bool  // last chunk ended in CR: CRLF or a bare CR, decided by the next byte
	werr      error // first write error
}

func (s *stuffer) write(p []byte) {
	for len(p) > 0 {
		if s.pendingCR {
			s.pendingCR = false
			s.str("\r\n")
			s.lineStart = true
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		if s.lineStart && p[0] == '.' {
			s.byte('.')
		}
		s.lineStart = false
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.bytes(p)
			return
		}
		s.bytes(p[:i])
		if p[i] == '\n' {
			s.str("\r\n")
			s.lineStart = true
		} else {
			s.pendingCR = true
		}
		p = p[i+1:]
	}
}

// finish ends the last line and writes the end-of-data marker.
func (s *stuffer) finish() {
	if s.pendingCR {
		s.pendingCR = false
		s.str("\r\n")
		s.lineStart = true
	}
	if !s.lineStart {
		s.str("\r\n")
	}
	s.str(".\r\n")
}

func (s *stuffer) err() error { return s.werr }

func (s *stuffer) bytes(p []byte) {
	if s.werr == nil && len(p) > 0 {
		_, s.werr = s.w.Write(p)
	}
}

func (s *stuffer) str(v string) {
	if s.werr == nil {
		_, s.werr = s.w.WriteString(v)
	}
}

func (s *stuffer) byte(b byte) {
	if s.werr == nil {
		s.werr = s.w.WriteByte(b)
	}
}
