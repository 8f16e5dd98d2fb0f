package smtp

import (
	"bufio"
	"bytes"
	"io"

	"gomta/session/received"
)

const (
	// maxTextLine is the longest text line in DATA, CRLF included, not counting
	// a dot added for transparency (RFC 5321 §4.5.3.1.6).
	maxTextLine = 1000
	// chunkSize bounds every Write to a MessageWriter: the body streams through
	// one buffer of this size, whatever the size of the message.
	chunkSize = 32 << 10
)

// dataFault is the set of reasons, found while reading DATA, to refuse the
// message. The reader keeps reading to the end marker whatever it finds, so
// that the session stays in step with the client.
type dataFault uint8

const (
	faultBareEOL  dataFault = 1 << iota // CR or LF not part of a CRLF pair (RFC 5321 §2.3.8)
	faultLongLine                       // text line over maxTextLine (RFC 5321 §4.5.3.1.6)
	faultTooBig                         // body over the size limit (RFC 1870)
	faultWrite                          // the MessageWriter failed
	faultNUL                            // a NUL octet (RFC 5322 §2.3, RFC 6152 §3)
	faultLoop                           // too many Received fields (RFC 5321 §6.3)
)

// reply is the reply for the most serious fault; nil for none. A write
// failure is the server's problem and is answered by the caller.
func (f dataFault) reply() *Reply {
	switch {
	case f&faultBareEOL != 0:
		return replyBareEOL
	case f&faultNUL != 0:
		return replyNUL
	case f&faultTooBig != 0:
		return replySizeExceeded
	case f&faultLongLine != 0:
		return replyDataLineTooLong
	case f&faultLoop != 0:
		return replyLoop
	}
	return nil
}

// dataReader reads one message body in the DATA phase (RFC 5321 §4.1.1.4):
// up to and excluding the end marker CRLF "." CRLF, where the first line of the
// body counts as following a CRLF. It removes the dot added for transparency
// (§4.5.2) and hands the body to sink while no fault is set. Only the exact
// octets CR LF "." CR LF end the body: a bare CR or LF is never part of an end
// marker, whatever follows it, and makes the message refused (SMTP smuggling).
// It counts the Received fields of the header section on the way (received.Counter).
type dataReader struct {
	br     *bufio.Reader
	max    int64     // size limit of the body in octets
	sink   io.Writer // receives the body; bounded writes are the sink's concern
	n      int64     // body octets seen, after unstuffing
	faults dataFault
	werr   error // first error of sink

	// hops counts the Received fields of the header section; more than
	// maxHops of them is faultLoop. maxHops 0: no limit.
	hops    received.Counter
	maxHops int
	prevCR  bool // the last fragment ended with CR
	lineLen int  // octets of the current line so far
	// trace picks the Message-ID and the previous hop's Received field
	// from the header section, for the acceptance line.
	trace traceScan
}

// read consumes the body and its end marker. It returns nil once the end marker
// was read, or the error of the connection (io.ErrUnexpectedEOF for an end of
// stream inside the body). Faults are in d.faults.
func (d *dataReader) read() error {
	lineStart := true // the next octet starts a line that follows a CRLF
	for {
		frag, err := d.br.ReadSlice('\n')
		if len(frag) > 0 {
			if lineStart {
				// A line always starts a fragment, and a fragment holds a whole
				// line or fills the reader's buffer (16 octets at least), so a
				// three-octet end marker is always seen whole here.
				if len(frag) == 3 && frag[0] == '.' && frag[1] == '\r' && frag[2] == '\n' {
					return nil
				}
				if frag[0] == '.' {
					frag = frag[1:]
				}
			}
			lineStart = d.feed(frag, lineStart)
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return io.ErrUnexpectedEOF
		default:
			return err
		}
	}
}

// feed checks one fragment of the body, which holds at most one LF, at its
// end, and hands it to sink while no fault is set. It returns whether the
// next octet starts a line that follows a CRLF (lineStart, as given when the
// fragment ends inside a line). The state it keeps between fragments (a CR
// at the end of the last one, the current line's length, the header scans)
// is in d, so that a line may be split across fragments of any size.
func (d *dataReader) feed(frag []byte, lineStart bool) bool {
	if len(frag) == 0 {
		return lineStart
	}
	var endsCRLF bool
	endsCRLF, d.prevCR = d.scan(frag, d.prevCR)
	if !d.trace.done {
		d.trace.Scan(frag)
	}
	if !d.hops.Done() {
		d.hops.Scan(frag)
		if d.maxHops > 0 && d.hops.N > d.maxHops {
			d.faults |= faultLoop
		}
	}
	d.lineLen += len(frag)
	if d.lineLen > maxTextLine {
		d.faults |= faultLongLine
	}
	d.n += int64(len(frag))
	if d.n > d.max {
		d.faults |= faultTooBig
	}
	if d.faults == 0 {
		if _, werr := d.sink.Write(frag); werr != nil {
			d.werr = werr
			d.faults |= faultWrite
		}
	}
	if frag[len(frag)-1] == '\n' {
		d.lineLen = 0
		return endsCRLF
	}
	return false
}

// scan looks for CR and LF octets that are not a CRLF pair in frag, a fragment
// that ends with the only LF it may hold. prevCR tells that the fragment before
// ended with CR. It reports whether frag ends with a CRLF pair and whether it
// ends with a CR (that the next fragment must pair).
func (d *dataReader) scan(frag []byte, prevCR bool) (endsCRLF, lastCR bool) {
	if len(frag) == 0 {
		return false, prevCR
	}
	if prevCR && frag[0] != '\n' {
		d.faults |= faultBareEOL
	}
	if bytes.IndexByte(frag, 0) >= 0 {
		d.faults |= faultNUL
	}
	for i := 0; ; {
		j := bytes.IndexByte(frag[i:], '\r')
		if j < 0 {
			break
		}
		k := i + j
		if k+1 == len(frag) {
			lastCR = true
			break
		}
		if frag[k+1] != '\n' {
			d.faults |= faultBareEOL
		}
		i = k + 1
	}
	n := len(frag)
	if frag[n-1] == '\n' {
		endsCRLF = n >= 2 && frag[n-2] == '\r' || n == 1 && prevCR
		if !endsCRLF {
			d.faults |= faultBareEOL
		}
	}
	return endsCRLF, lastCR
}

// chunkWriter gathers small writes into one fixed buffer and passes it on to w
// when full, so that w sees writes of at most cap(buf) octets.
type chunkWriter struct {
	w   io.Writer
	buf []byte
	err error // sticky error of w
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && c.err == nil {
		k := copy(c.buf[len(c.buf):cap(c.buf)], p)
		c.buf = c.buf[:len(c.buf)+k]
		p, n = p[k:], n+k
		if len(c.buf) == cap(c.buf) {
			c.Flush()
		}
	}
	return n, c.err
}

// Flush passes what is buffered on to w.
func (c *chunkWriter) Flush() error {
	if c.err == nil && len(c.buf) > 0 {
		_, c.err = c.w.Write(c.buf)
		c.buf = c.buf[:0]
	}
	return c.err
}
