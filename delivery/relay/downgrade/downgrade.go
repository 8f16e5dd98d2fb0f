// Package downgrade owns the 8-bit to 7-bit conversion of a message for a
// next hop that does not offer 8BITMIME (RFC 6152 §3, RFC 1652): it walks
// the MIME structure (nested multiparts included) line by line and
// re-encodes as quoted-printable every text part that carries 8-bit data,
// changing its Content-Transfer-Encoding header; everything else passes
// through unchanged.
//
// What it does, part by part (as Postfix's MIME downgrade, plus the
// undeclared cases Postfix sends unconverted):
//   - text/* declared 8bit: quoted-printable. text/* with no encoding or
//     7bit whose first lookahead bytes hold an 8-bit octet or a line over
//     998 octets: quoted-printable.
//   - multipart/* and message/* declared 8bit: the label becomes 7bit (their
//     children are converted or checked). A message/rfc822 part (a
//     forwarded message, the original in a RET=FULL bounce) is converted as
//     a message of its own, as Postfix does: its 8-bit text parts become
//     quoted-printable.
//   - a message without MIME-Version whose body is 8-bit becomes a MIME
//     text/plain message with charset=unknown-8bit (RFC 1428: the charset
//     of a body whose charset nobody recorded).
//
// Invariants: on success every output octet is below 128 and every line is
// at most 998 octets plus CRLF (RFC 5321 §4.5.3.1.6); 7-bit input (RFC 2045
// §2.7 7bit data, with no part labelled 8bit or binary) comes out unchanged,
// so converting twice equals converting once; decoding a converted part
// gives its original octets. What cannot be made 7-bit without changing
// the structure (an 8-bit octet in a header field, 8-bit data in a
// non-text part or in a message/* part other than message/rfc822, binary encoding, an unparsable
// Content-Type, a missing boundary, over-deep nesting, a line longer than
// the read buffer) fails with ErrNotConvertible before anything that
// cannot be undone: callers convert once into io.Discard to decide, then
// again to send. Memory is bounded: one read buffer, one header block and
// one lookahead window per conversion, whatever the message size.
package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
)

// Limits that bound a conversion's memory.
const (
	// maxLine is the longest input line read whole: RFC 5321 §4.5.3.1.6
	// allows 998 octets, and a longer line is accepted up to here in a part
	// that is re-encoded anyway.
	maxLine = 64 << 10
	// maxHeader bounds one header block (a message's or a part's).
	maxHeader = 256 << 10
	// lookahead bounds how much of a part without a declared 8bit encoding
	// is held while looking for 8-bit data.
	lookahead = 256 << 10
	// maxDepth bounds multipart nesting.
	maxDepth = 32
	// lineLimit is RFC 5321 §4.5.3.1.6's line length, CRLF excluded.
	lineLimit = 998
)

// ErrNotConvertible is wrapped by Convert's error when the message cannot
// be made 7-bit: the relay bounces it with 5.6.3.
var ErrNotConvertible = errors.New("downgrade: conversion required but not supported")

// Convert copies the message from r to w made 7-bit. converted tells that
// something was changed. An error wrapping ErrNotConvertible says why the
// message cannot be converted; any other error is r's or w's.
func Convert(w io.Writer, r io.Reader) (converted bool, err error) {
	c := &conv{r: bufio.NewReaderSize(r, maxLine), w: bufio.NewWriter(w)}
	if err := c.entity(true, "text/plain"); err != nil {
		return false, err
	}
	if c.pending != nil {
		return false, notConvertible("boundary line outside its multipart")
	}
	return c.converted, c.w.Flush()
}

func notConvertible(why string) error { return fmt.Errorf("%w: %s", ErrNotConvertible, why) }

// conv is one conversion's state.
type conv struct {
	r         *bufio.Reader
	w         *bufio.Writer
	bounds    []string // enclosing multipart boundaries, innermost last
	depth     int      // enclosing multiparts and message/rfc822 parts
	pending   []byte   // a boundary line that ended the current part, not yet handled
	eof       bool
	converted bool
}

// next returns the next line (terminator included; nil at the end of
// input), or a boundary of an enclosing multipart as pending (then nil).
func (c *conv) next() ([]byte, error) {
	if c.pending != nil || c.eof {
		return nil, nil
	}
	line, err := c.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, notConvertible("line too long")
	case errors.Is(err, io.EOF):
		c.eof = true
		if len(line) == 0 {
			return nil, nil
		}
	case err != nil:
		return nil, err
	}
	if c.isBoundary(line) {
		c.pending = append([]byte(nil), line...)
		return nil, nil
	}
	return line, nil
}

// isBoundary reports whether line is a delimiter of an enclosing multipart
// (RFC 2046 §5.1.1: "--" boundary, optionally "--", then transport padding).
func (c *conv) isBoundary(line []byte) bool {
	if len(c.bounds) == 0 || len(line) < 2 || line[0] != '-' || line[1] != '-' {
		return false
	}
	for _, b := range c.bounds {
		if _, ok := delimiter(line, b); ok {
			return true
		}
	}
	return false
}

// delimiter reports whether line delimits boundary b, and whether it is the
// close delimiter.
func delimiter(line []byte, b string) (closing, ok bool) {
	s := string(trimEOL(line))
	if !strings.HasPrefix(s, "--"+b) {
		return false, false
	}
	rest := s[2+len(b):]
	if strings.HasPrefix(rest, "--") {
		closing, rest = true, rest[2:]
	}
	return closing, strings.TrimRight(rest, " \t") == ""
}

func trimEOL(line []byte) []byte {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return line[:n]
}

// sevenBit reports whether line is 7bit data: no octet over 127 and at most
// 998 octets before its end of line.
func sevenBit(line []byte) bool {
	if len(trimEOL(line)) > lineLimit {
		return false
	}
	for _, b := range line {
		if b > 127 {
			return false
		}
	}
	return true
}

// pass copies the rest of the current part, which must already be 7bit.
func (c *conv) pass(where string) error {
	for {
		line, err := c.next()
		if err != nil || line == nil {
			return err
		}
		if !sevenBit(line) {
			return notConvertible("8-bit data or a long line in " + where)
		}
		if _, err := c.w.Write(line); err != nil {
			return err
		}
	}
}

// encode writes held and then the rest of the current part as
// quoted-printable.
func (c *conv) encode(held [][]byte) error {
	c.converted = true
	qw := quotedprintable.NewWriter(c.w)
	for _, l := range held {
		if err := qpLine(qw, l); err != nil {
			return err
		}
	}
	for {
		line, err := c.next()
		if err != nil {
			return err
		}
		if line == nil {
			break
		}
		if err := qpLine(qw, line); err != nil {
			return err
		}
	}
	return qw.Close()
}

// qpLine encodes one line. A bare CR is refused: the encoder would make it
// a line break, and the decoded part would not be the original.
func qpLine(qw *quotedprintable.Writer, line []byte) error {
	if bytes.IndexByte(trimEOL(line), '\r') >= 0 {
		return notConvertible("bare CR in a text part")
	}
	_, err := qw.Write(line)
	return err
}
