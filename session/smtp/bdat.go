package smtp

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// errBadBdat ends a session whose BDAT command gave no chunk size that can be
// read: where its chunk ends, and so where the next command starts, is
// unknown, and running the chunk's octets as commands could smuggle them in.
var errBadBdat = errors.New("BDAT without a valid chunk size")

// draft is a message being received in BDAT chunks (RFC 3030): opened by
// the first chunk of a transaction, committed by the chunk marked LAST,
// aborted by RSET, HELO/EHLO, a refused chunk or the end of the session.
// The chunks stream through dr (the checks of DATA, without dot-unstuffing
// or an end marker) into mw; nothing of the message is kept in memory.
type draft struct {
	mw    MessageWriter
	hdr   string // the Received field, written before the first chunk
	size  int    // octets of the Received field
	start time.Time
	dr    dataReader
}

// bdat answers BDAT <size> [LAST] (RFC 3030 §2, §4.1). Whatever the reply,
// the size octets that follow the command line are read, so that the session
// stays in step with a client that pipelined its chunks: a refused chunk is
// read and thrown away. A refused chunk ends the transaction; the 250 to the
// LAST chunk is sent only once Commit returned nil, as at the end of DATA.
func (s *session) bdat(arg string) (*Reply, error) {
	size, last, ok := parseBdat(arg)
	if !ok {
		return nil, s.closeWith(replyBadBdat, errBadBdat)
	}
	s.nc.SetReadDeadline(s.deadline(s.cfg.DataTimeout))
	if r := s.bdatOutOfSeq(); r != nil {
		return r, s.readChunk(size, nil)
	}
	max := bodyLimit(s.cfg.MaxSize)
	if s.draft != nil {
		max -= s.draft.dr.n
	}
	if size > max {
		s.resetTx()
		return replySizeExceeded, s.readChunk(size, nil)
	}
	if s.draft == nil {
		if r := s.openDraft(); r != nil {
			s.resetTx()
			return r, s.readChunk(size, nil)
		}
	}
	if err := s.takeChunk(size, last); err != nil {
		return nil, err
	}
	if r := s.refusal(&s.draft.dr, s.draft.mw.ID()); r != nil {
		s.resetTx()
		return r, nil
	}
	if !last {
		s.state = stateChunk
		return replyChunkOK(size), nil
	}
	d := s.draft
	s.draft = nil // committed or aborted here, not by resetTx
	defer s.resetTx()
	r, committed := s.commit(d.mw, &d.dr, d.size, d.start)
	if !committed {
		d.mw.Abort()
	}
	return r, nil
}

// bdatOutOfSeq is the reply to a BDAT sent where no message may follow: before
// HELO/EHLO, or before a recipient was accepted.
func (s *session) bdatOutOfSeq() *Reply {
	switch s.state {
	case stateGreeted:
		return replyNeedHelo
	case stateRcpt, stateChunk:
		return nil
	}
	return replyBdatNeedRcpt
}

// openDraft opens the MessageWriter of a BDAT transaction; a non-nil reply
// tells why it could not.
func (s *session) openDraft() *Reply {
	start := time.Now()
	mw, err := s.srv.be.NewMessage(s.ctx, &s.conn)
	if err != nil {
		return s.backendReply(err, zap.String("mail_from", s.from))
	}
	pre, err := writeTrace(mw, s.from, s.rcpts)
	if err != nil {
		mw.Abort()
		return s.backendReply(err, zap.String("msg_id", mw.ID()))
	}
	hdr := s.receivedHeader(mw.ID(), start)
	d := &draft{mw: mw, hdr: hdr, size: pre + len(hdr), start: start}
	d.dr = dataReader{max: bodyLimit(s.cfg.MaxSize), maxHops: s.cfg.MaxReceived}
	d.dr.hops.N = 1 // the Received field prepended here counts, as in data
	s.draft = d
	return nil
}

// takeChunk streams size octets of the connection into the draft through
// one pooled buffer (the Received field first, for the first chunk). After
// the LAST chunk, a last line without its CRLF gets one: the message as
// queued is lines, as after DATA. It returns only errors of the connection;
// what is wrong with the message is in the draft's faults.
func (s *session) takeChunk(size int64, last bool) error {
	d := s.draft
	buf := s.srv.chunks.Get().(*[chunkSize]byte)
	defer s.srv.chunks.Put(buf)
	cw := &chunkWriter{w: d.mw, buf: buf[:0]}
	d.dr.sink = cw
	defer func() { d.dr.sink = nil }()
	if d.hdr != "" {
		if _, err := io.WriteString(cw, d.hdr); err != nil {
			d.dr.faults, d.dr.werr = faultWrite, err
		}
		d.hdr = ""
	}
	if err := s.readChunk(size, d.dr.feedChunk); err != nil {
		return err
	}
	if last {
		d.dr.endChunks()
	}
	if err := cw.Flush(); err != nil && d.dr.faults == 0 {
		d.dr.faults, d.dr.werr = faultWrite, err
	}
	return nil
}

// readChunk reads exactly size octets of the connection, under the deadline
// already set, handing them to feed (when not nil) straight from the
// reader's buffer. An end of stream inside the chunk is io.ErrUnexpectedEOF.
// Replies held for pipelined commands are sent before it waits for input, so
// that a client that waits for them before it sends the rest of a chunk is
// not left waiting.
func (s *session) readChunk(size int64, feed func([]byte)) error {
	for size > 0 {
		if s.br.Buffered() == 0 {
			if err := s.flush(); err != nil {
				return err
			}
			if _, err := s.br.Peek(1); err != nil {
				if err == io.EOF {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := int(min(size, int64(s.br.Buffered())))
		p, _ := s.br.Peek(k)
		if feed != nil {
			feed(p)
		}
		s.br.Discard(k)
		size -= int64(k)
	}
	return nil
}

// abortDraft throws away a message whose LAST chunk did not come.
func (s *session) abortDraft() {
	if s.draft != nil {
		s.draft.mw.Abort()
		s.draft = nil
	}
}

// feedChunk checks octets of a BDAT chunk: they are the message as it is,
// with no dot-stuffing and no end marker (RFC 3030 §2), but its lines must
// still end in CRLF: a bare CR or LF is refused as in DATA (RFC 5321 §2.3.8;
// without BINARYMIME the message is text), so that a message taken by BDAT
// can be relayed by DATA without a line end that another server could read
// as an end of data.
func (d *dataReader) feedChunk(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n') + 1
		if i == 0 {
			i = len(p)
		}
		d.feed(p[:i], false)
		p = p[i:]
	}
}

// endChunks ends a message taken by BDAT: a CR at its very end pairs with
// nothing (a bare CR), and a last line without its line end gets CRLF.
func (d *dataReader) endChunks() {
	switch {
	case d.prevCR:
		d.faults |= faultBareEOL
	case d.lineLen > 0:
		d.feed([]byte("\r\n"), false)
	}
}

// parseBdat parses the argument of BDAT: chunk-size [SP "LAST"] (RFC 3030
// §4.1, chunk-size = 1*DIGIT; the keyword without regard to case).
func parseBdat(arg string) (size int64, last, ok bool) {
	num, rest, _ := strings.Cut(arg, " ")
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, false, false
	}
	size, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, false, false
	}
	switch {
	case rest == "":
		return size, false, true
	case strings.EqualFold(rest, "LAST"):
		return size, true, true
	}
	return 0, false, false
}
