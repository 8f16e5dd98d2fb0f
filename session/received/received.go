// Package received owns the counting of a message's Received: header fields
// (RFC 5321 §6.3: a message with too many has looped), done in one way
// whether the message streams through the SMTP server's DATA reader or is
// read back from the queue by the delivery worker.
//
// Invariants: the package imports nothing of gomta's; only the header section
// is counted, never the body; a Counter keeps no more than its state, so a
// message of any size is counted in constant memory.
package received

import (
	"bytes"
	"io"
)

// state is where a Counter stands in the header section.
type state uint8

const (
	lineStart state = iota // at the start of a line of the header section
	inName                 // in a field name
	inWSP                  // in white space between a field name and its colon
	skipLine               // in a line already classified: skip to its LF
	inBody                 // the header section is over
)

// fieldName is the field name counted by Counter, lower-cased.
const fieldName = "received"

// Counter counts the "Received:" fields of a message's header section
// (RFC 5322 §2.2, §3.6.7) as the message streams through it, fragment by
// fragment, keeping no more than its state. Field names are compared without
// regard to case, "Received :" counts too (RFC 5322 §4.5.3, obsolete white
// space before the colon), and a folded continuation line (starting with SP
// or HTAB) belongs to its field. The header section ends at the first empty
// line, or at the first line that is neither a field nor a continuation (as
// Postfix's cleanup does): what follows is the body, never counted.
type Counter struct {
	state state
	match int // octets of a field name that matched "received" so far; -1: another name
	N     int // Received fields seen (a caller may start it at its own count)
}

// Scan reads the next octets of the message.
func (h *Counter) Scan(p []byte) {
	for i := 0; i < len(p) && h.state != inBody; i++ {
		c := p[i]
		switch h.state {
		case skipLine:
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return
			}
			i += j
			h.state = lineStart
		case lineStart:
			switch {
			case c == ' ' || c == '\t':
				h.state = skipLine // a folded continuation line
			case isFtext(c):
				h.state, h.match = inName, 0
				h.nameOctet(c)
			default:
				h.state = inBody // the empty line (CR LF), or no field at all
			}
		case inName:
			switch {
			case isFtext(c):
				h.nameOctet(c)
			case c == ':':
				h.colon()
			case c == ' ' || c == '\t':
				h.state = inWSP
			default:
				h.state = inBody
			}
		case inWSP:
			switch c {
			case ' ', '\t':
			case ':':
				h.colon()
			default:
				h.state = inBody
			}
		}
	}
}

// Count counts the Received: fields of the header section of the
// message read from r, as a Counter does, reading no further than the
// end of the header section or limit octets: for messages already queued
// (RFC 5321 §6.3).
func Count(r io.Reader, limit int64) (int, error) {
	var h Counter
	buf := make([]byte, 32<<10)
	lr := io.LimitReader(r, limit)
	for h.state != inBody {
		n, err := lr.Read(buf)
		h.Scan(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return h.N, err
		}
	}
	return h.N, nil
}

// nameOctet matches one more octet of a field name against "received".
func (h *Counter) nameOctet(c byte) {
	if h.match >= 0 && h.match < len(fieldName) && c|0x20 == fieldName[h.match] {
		h.match++
	} else {
		h.match = -1
	}
}

// colon ends a field name.
func (h *Counter) colon() {
	if h.match == len(fieldName) {
		h.N++
	}
	h.state = skipLine
}

// isFtext tells an octet that may be part of a field name: printable US-ASCII
// but the colon (RFC 5322 §3.6.8).
func isFtext(c byte) bool { return c >= 33 && c <= 126 && c != ':' }

// Done reports whether the header section is over: Scan counts nothing more.
func (h *Counter) Done() bool { return h.state == inBody }
