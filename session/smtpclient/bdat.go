package smtpclient

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultChunkingOver is the body size above which a message goes in BDAT
// chunks (RFC 3030) to a server that offers CHUNKING: below it the round trip
// per chunk costs more than dot-stuffing saves.
const DefaultChunkingOver = 1 << 20

// bdatWindow bounds how many BDAT chunks are sent before their replies are
// read (RFC 2920 §3.1: a client that never reads can deadlock against a
// server whose replies fill the socket buffers).
const bdatWindow = 8

// crlfPool holds the buffers a chunk is written from: a body chunk whose
// every octet is a bare CR or LF doubles once they become CRLF.
var crlfPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*bodyChunk); return &b }}

// useBdat reports whether body goes in BDAT chunks: the server offers
// CHUNKING and the body is known to be larger than Options.ChunkingOver.
// A body whose size cannot be known in advance goes by DATA.
func (c *Client) useBdat(body io.Reader) bool {
	if _, ok := c.ext["CHUNKING"]; !ok || c.opt.ChunkingOver < 0 {
		return false
	}
	over := c.opt.ChunkingOver
	if over == 0 {
		over = DefaultChunkingOver
	}
	size, ok := bodySize(body)
	return ok && size > over
}

// bodySize is the size of a body that tells it: an in-memory reader's
// unread length, or a regular file's size.
func bodySize(body io.Reader) (int64, bool) {
	switch b := body.(type) {
	case interface{ Len() int }:
		return int64(b.Len()), true
	case interface{ Stat() (os.FileInfo, error) }:
		fi, err := b.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		return fi.Size(), true
	}
	return 0, false
}

// bdatBody sends the body in BDAT chunks (RFC 3030 §2), one per read of the
// body, with bare CR and LF turned into CRLF as by DATA (RFC 5321 §2.3.8:
// they must not be sent; the server refuses them), and no dot-stuffing. Up
// to bdatWindow chunks are in flight; the last command is BDAT LAST, with
// the CRLF that ends a body without one. The final reply is left in c.rb: a
// negative one, to any chunk, is returned and ends the sending (the server
// has ended the transaction, RFC 3030 §2), and RSET follows.
func (c *Client) bdatBody(body io.Reader) error {
	start := time.Now()
	bp, op := chunkPool.Get().(*[]byte), crlfPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	defer crlfPool.Put(op)
	var (
		n       crlf
		pending int   // chunks sent whose reply is not read yet
		refused error // the first negative reply
	)
	readOne := func() error {
		pending--
		if err := c.read(); err != nil {
			return err
		}
		if err := c.expect(2); err != nil && refused == nil {
			refused = err
		}
		return nil
	}
	for refused == nil {
		k, rerr := io.ReadFull(body, *bp)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return c.fail(fmt.Errorf("reading message body: %w", rerr))
		}
		out := (*op)[:0]
		last := rerr != nil
		out = n.convert(out, (*bp)[:k], last)
		c.chunk(out, last)
		if pending++; pending == bdatWindow || last {
			c.deadline()
			if err := c.w.Flush(); err != nil {
				return c.fail(err)
			}
		}
		for pending == bdatWindow || last && pending > 0 {
			if err := readOne(); err != nil {
				return err
			}
		}
		if last {
			break
		}
	}
	for pending > 0 { // after a refusal: the replies to the chunks already sent
		if err := readOne(); err != nil {
			return err
		}
	}
	c.opt.trace("bdat", start)
	if refused != nil {
		c.resetQuietly()
	}
	return refused
}

// chunk buffers one BDAT command and its octets.
func (c *Client) chunk(p []byte, last bool) {
	c.deadline()
	kw := ""
	if last {
		kw = " LAST"
	}
	c.cmd("BDAT ", strconv.Itoa(len(p)), kw)
	_, _ = c.w.Write(p)
}

// crlf turns bare CR and bare LF into CRLF across the reads of a body.
type crlf struct {
	cr      bool // the last octet was a CR: an LF right after it is its pair
	started bool // an octet was seen
	nl      bool // the last octet written ended a line
}

// convert appends src to dst with its line ends made CRLF; at the end of the
// body (eob) a last line without its line end gets CRLF.
func (n *crlf) convert(dst, src []byte, eob bool) []byte {
	for _, b := range src {
		n.started = true
		switch {
		case b == '\n' && n.cr:
			n.cr = false
		case b == '\r':
			dst = append(dst, '\r', '\n')
			n.cr, n.nl = true, true
		case b == '\n':
			dst = append(dst, '\r', '\n')
			n.cr, n.nl = false, true
		default:
			dst = append(dst, b)
			n.cr, n.nl = false, false
		}
	}
	if eob && n.started && !n.nl {
		dst = append(dst, '\r', '\n')
		n.nl = true
	}
	return dst
}
