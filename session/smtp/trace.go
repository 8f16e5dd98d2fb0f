package smtp

import (
	"bytes"
)

// maxTraceField bounds the value kept of a header field for the acceptance
// line (Message-ID, the upstream Received field): RFC 5322 §2.1.1 limits a
// line to 998 octets, and a folded field value longer than that is no
// Message-ID anyone wrote in earnest.
const maxTraceField = 998

// traceScan picks, from the header section of a message as it streams
// through the DATA reader, the two fields the acceptance line names: the
// Message-ID (RFC 5322 §3.6.4, the first one) and the first Received field
// of the message as the client sent it (the previous hop's, RFC 5321 §4.4:
// a hop prepends its own). It keeps at most maxTraceField octets of each
// and of the current line, whatever the size of the message, and stops at
// the end of the header section: the first empty line, or a line that is
// neither a field nor a continuation (as received.Counter does).
type traceScan struct {
	line      []byte // the current line so far, bounded
	lineLong  bool   // the current line went over the bound
	field     *[]byte
	done      bool
	messageID []byte // unfolded value, "" when absent
	received  []byte // unfolded value of the first Received field, "" when absent
	gotMID    bool
	gotRcvd   bool
}

// Scan reads the next octets of the message (after dot-unstuffing).
func (h *traceScan) Scan(p []byte) {
	for len(p) > 0 && !h.done {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		// A line is at most maxTraceField octets and CRLF; a longer one
		// is not looked into.
		room := max(maxTraceField+2-len(h.line), 0)
		if len(chunk) > room {
			h.lineLong = true
		}
		h.line = append(h.line, chunk[:min(room, len(chunk))]...)
		if i >= 0 {
			h.endLine()
		}
	}
}

// endLine classifies the line just read.
func (h *traceScan) endLine() {
	l := bytes.TrimRight(h.line, "\r\n")
	long := h.lineLong
	h.line, h.lineLong = h.line[:0], false
	switch {
	case len(l) == 0:
		h.done = true
	case l[0] == ' ' || l[0] == '\t':
		if h.field != nil && !long {
			h.add(l)
		}
	default:
		h.field = nil
		name, value, ok := bytes.Cut(l, []byte(":"))
		name = bytes.TrimRight(name, " \t")
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			h.done = true // not a field: the body has begun
			return
		}
		switch {
		case !h.gotMID && bytes.EqualFold(name, []byte("Message-ID")):
			h.gotMID, h.field = true, &h.messageID
		case !h.gotRcvd && bytes.EqualFold(name, []byte("Received")):
			h.gotRcvd, h.field = true, &h.received
		default:
			return
		}
		if !long {
			h.add(value)
		}
	}
}

// add appends a piece of the current field's value, unfolded (RFC 5322
// §2.2.3: a fold is the CRLF alone), within the bound.
func (h *traceScan) add(v []byte) {
	f := h.field
	if len(*f)+len(v) > maxTraceField {
		h.field = nil // too long to be worth logging: keep what came before
		return
	}
	*f = append(*f, v...)
}

// MessageID is the Message-ID field's value as written, angle brackets
// included, without surrounding white space; "" when the header has none.
func (h *traceScan) MessageID() string { return string(bytes.TrimSpace(h.messageID)) }

// UpstreamID is the id that the previous hop gave the message, from the id
// clause of its Received field ("by host (gomta) with ESMTP id X", RFC 5321
// §4.4; Postfix writes "id <X>" too); "" when there is none. Any client can
// write a Received field: the id is a claim, which the previous hop's log
// confirms or not.
func (h *traceScan) UpstreamID() string {
	v := h.received
	if semi := bytes.IndexByte(v, ';'); semi >= 0 {
		v = v[:semi]
	}
	f := bytes.Fields(v)
	for i := 0; i+1 < len(f); i++ {
		if bytes.EqualFold(f[i], []byte("id")) {
			id := bytes.Trim(f[i+1], "<>")
			if len(id) > 0 && len(id) <= 128 {
				return string(id)
			}
		}
	}
	return ""
}
