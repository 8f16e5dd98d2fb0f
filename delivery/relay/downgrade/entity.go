package downgrade

import (
	"bytes"
	"mime"
	"slices"
	"strings"
)

// header is one header block as read: its lines (terminators included) and
// the field each line belongs to.
type header struct {
	lines  [][]byte
	fields []string // lower-case field name of each line
	end    []byte   // the empty line that ended the block; nil at the end of input
}

// get returns the unfolded value of field name ("" when absent).
func (h *header) get(name string) string {
	var b strings.Builder
	for i, l := range h.lines {
		if h.fields[i] != name {
			continue
		}
		s := string(trimEOL(l))
		if b.Len() == 0 {
			_, s, _ = strings.Cut(s, ":")
		}
		b.WriteString(s)
	}
	return strings.TrimSpace(b.String())
}

// readHeader reads a header block up to and including its empty line.
func (c *conv) readHeader() (*header, error) {
	h := &header{}
	size, field := 0, ""
	for {
		line, err := c.next()
		if err != nil {
			return nil, err
		}
		if line == nil {
			return h, nil
		}
		if len(trimEOL(line)) == 0 {
			h.end = append([]byte(nil), line...)
			return h, nil
		}
		if !sevenBit(line) {
			return nil, notConvertible("8-bit octet or long line in a header field")
		}
		if size += len(line); size > maxHeader {
			return nil, notConvertible("header too large")
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := bytes.Cut(line, []byte(":"))
			field = strings.ToLower(strings.TrimSpace(string(name)))
		}
		h.lines = append(h.lines, append([]byte(nil), line...))
		h.fields = append(h.fields, field)
	}
}

// writeHeader emits h without the fields named in drop (lower case) and
// with the lines of add before its empty line.
func (c *conv) writeHeader(h *header, drop []string, add ...string) error {
	for i, l := range h.lines {
		if slices.Contains(drop, h.fields[i]) {
			continue
		}
		if _, err := c.w.Write(l); err != nil {
			return err
		}
	}
	for _, a := range add {
		if _, err := c.w.WriteString(a + "\r\n"); err != nil {
			return err
		}
	}
	_, err := c.w.Write(h.end)
	return err
}

// cteField is the one field a re-encoding changes.
const cteField = "content-transfer-encoding"

// relabel is the header change that declares a new encoding.
func (c *conv) relabel(h *header, cte string, drop []string, add ...string) error {
	c.converted = true
	return c.writeHeader(h, append(drop, cteField), append(add, "Content-Transfer-Encoding: "+cte)...)
}

// entity converts one entity: a header block and its body. top is the
// message itself (where MIME-Version decides whether MIME applies);
// deflt is the type of a part without Content-Type (RFC 2046 §5.1.5).
func (c *conv) entity(top bool, deflt string) error {
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	if top && h.get("mime-version") == "" {
		return c.text(h, "", true)
	}
	mt, params := deflt, map[string]string(nil)
	if v := h.get("content-type"); v != "" {
		if mt, params, err = mime.ParseMediaType(v); err != nil {
			return notConvertible("unparsable Content-Type")
		}
	}
	cte := strings.ToLower(h.get("content-transfer-encoding"))
	if cte == "binary" {
		return notConvertible("binary content")
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return c.multipart(h, cte, params["boundary"], mt == "multipart/digest")
	case mt == "message/rfc822" && (cte == "" || cte == "7bit" || cte == "8bit"):
		return c.message(h, cte)
	case strings.HasPrefix(mt, "message/"):
		return c.opaque(h, cte, "a message/* part")
	case strings.HasPrefix(mt, "text/") && (cte == "" || cte == "7bit" || cte == "8bit"):
		return c.text(h, cte, false)
	}
	return c.opaque(h, "", "a non-text part")
}

// opaque passes a part that is not re-encoded, relabelling a declared 8bit
// as 7bit (its content is checked to be 7bit on the way).
func (c *conv) opaque(h *header, cte, where string) error {
	var err error
	if cte == "8bit" {
		err = c.relabel(h, "7bit", nil)
	} else {
		err = c.writeHeader(h, nil)
	}
	if err != nil {
		return err
	}
	return c.pass(where)
}

// text converts a text part (or a non-MIME message's body) declared with
// cte: declared 8bit is always re-encoded; otherwise the first lookahead
// bytes decide, and 8-bit data found later cannot be converted.
func (c *conv) text(h *header, cte string, nonMIME bool) error {
	var drop, add []string
	if nonMIME {
		// Without MIME-Version no Content-* field had a meaning (RFC 2045
		// §4): the converted message states its own.
		drop = []string{"content-type"}
		add = []string{"MIME-Version: 1.0", "Content-Type: text/plain; charset=unknown-8bit"}
	}
	if cte == "8bit" {
		if err := c.relabel(h, "quoted-printable", drop, add...); err != nil {
			return err
		}
		return c.encode(nil)
	}
	var held [][]byte
	size := 0
	for size < lookahead {
		line, err := c.next()
		if err != nil {
			return err
		}
		if line == nil {
			break
		}
		held = append(held, append([]byte(nil), line...))
		size += len(line)
		if !sevenBit(line) {
			if err := c.relabel(h, "quoted-printable", drop, add...); err != nil {
				return err
			}
			return c.encode(held)
		}
	}
	if err := c.writeHeader(h, nil); err != nil {
		return err
	}
	for _, l := range held {
		if _, err := c.w.Write(l); err != nil {
			return err
		}
	}
	return c.pass("a text part past its first bytes")
}

// multipart converts a multipart entity: preamble, each body part, epilogue.
func (c *conv) multipart(h *header, cte, boundary string, digest bool) error {
	if boundary == "" {
		return notConvertible("multipart without a boundary")
	}
	if c.depth >= maxDepth {
		return notConvertible("multipart nested too deep")
	}
	c.depth++
	defer func() { c.depth-- }()
	if cte != "" && cte != "7bit" && cte != "8bit" {
		return notConvertible("multipart with encoding " + cte)
	}
	c.bounds = append(c.bounds, boundary)
	defer func() { c.bounds = c.bounds[:len(c.bounds)-1] }()
	if err := c.opaque(h, cte, "a multipart preamble"); err != nil {
		return err
	}
	child := "text/plain"
	if digest {
		child = "message/rfc822"
	}
	for {
		line := c.pending
		if line == nil {
			return notConvertible("multipart without its close delimiter")
		}
		closing, ours := delimiter(line, boundary)
		if !ours {
			return notConvertible("multipart ended by an outer boundary")
		}
		c.pending = nil
		if _, err := c.w.Write(line); err != nil {
			return err
		}
		if closing {
			return c.pass("a multipart epilogue")
		}
		if err := c.entity(false, child); err != nil {
			return err
		}
	}
}

// message converts a message/rfc822 part: its label (8bit becomes 7bit,
// RFC 2046 §5.2.1 allows no other encoding than 7bit, 8bit or binary),
// then the enclosed message as a message of its own, up to the enclosing
// boundary.
func (c *conv) message(h *header, cte string) error {
	if c.depth >= maxDepth {
		return notConvertible("message/rfc822 nested too deep")
	}
	c.depth++
	defer func() { c.depth-- }()
	var err error
	if cte == "8bit" {
		err = c.relabel(h, "7bit", nil)
	} else {
		err = c.writeHeader(h, nil)
	}
	if err != nil {
		return err
	}
	return c.entity(true, "text/plain")
}
