package smtpclient

import (
	"fmt"
	"io"
	"sync"
	"time"

	"gomta/session/dotstuff"
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
	s := dotstuff.NewWriter(c.w)
	empty := 0 // consecutive (0, nil) reads; io.Reader discourages them, bufio gives up after 100
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			empty = 0
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.opt.Timeout))
			if _, err := s.Write(buf[:n]); err != nil {
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
	if err := s.Close(); err != nil {
		return c.fail(err)
	}
	return nil
}
