package main

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Line is one gomta log line: the fields mtalog reads, decoded. Fields
// absent from the line are zero. A Line handed out by a reader is valid
// until the reader's next call; its strings may be kept.
type Line struct {
	TS    int64 // unix nanoseconds, from ts
	Level string
	Msg   string

	Host, Proto, SessionID, Remote string
	MsgID, MailFrom, MessageID     string
	Rcpt                           []string // rcpt: one string or an array
	Bytes                          int64
	TLS                            bool
	AuthUser, UpstreamMsgID        string
	User, File, Command            string

	Domain, MX, MXAddr, RemoteReply string
	SMTPCode                        int
	Enhanced, Error                 string
	Attempt                         int
	DurationMS                      int64
	NextAttempt, BounceMsgID        string
}

// Why a line is not read as a gomta line.
var (
	errNotJSON  = errors.New("not a JSON object")
	errNotGomta = errors.New("no ts or msg: not a gomta line")
)

// internMax bounds a parser's table of repeated values (levels, messages,
// hosts, protos, domains): enough for every constant message and the hosts
// of a site, so that a log with many distinct values costs copies, not an
// ever-growing table.
const internMax = 4096

// parser decodes lines into Lines. It reads only the keys of Line and skips
// every other value without decoding it: encoding/json into a struct costs
// several times more per line (BenchmarkParse), and a busy day's log is
// millions of lines.
type parser struct {
	intern map[string]string
	fields fieldSet
}

// fieldSet says which of Line's fields a parser decodes.
type fieldSet int

const (
	allFields     fieldSet = iota // every field: trace
	summaryFields                 // those summary counts: the others are skipped, not copied
)

func newParser(fs fieldSet) *parser {
	return &parser{intern: make(map[string]string, 256), fields: fs}
}

// detail reads a field that only trace shows.
func (p *parser) detail(sc *scanner, dst *string, intern bool) bool {
	if p.fields == summaryFields {
		return sc.skip()
	}
	return p.str(sc, dst, intern)
}

// parse decodes one line into l, overwriting all of it. It returns
// errNotJSON for a line that is not one well-formed JSON object and
// errNotGomta for an object without a time (ts) or a message (msg).
func (p *parser) parse(b []byte, l *Line) error {
	rcpt := l.Rcpt[:0]
	*l = Line{Rcpt: rcpt}
	sc := scanner{b: b}
	sc.ws()
	if !sc.eat('{') {
		return errNotJSON
	}
	sc.ws()
	if sc.eat('}') {
		return errNotGomta
	}
	for {
		sc.ws()
		key, ok := sc.rawString()
		if !ok {
			return errNotJSON
		}
		sc.ws()
		if !sc.eat(':') {
			return errNotJSON
		}
		sc.ws()
		if !p.value(&sc, key, l) {
			return errNotJSON
		}
		sc.ws()
		if sc.eat(',') {
			continue
		}
		if !sc.eat('}') {
			return errNotJSON
		}
		break
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return errNotJSON
	}
	if l.TS == 0 || l.Msg == "" {
		return errNotGomta
	}
	return nil
}

// value reads the value of key into l, or skips it; false when the line is
// not well-formed JSON.
func (p *parser) value(sc *scanner, key []byte, l *Line) bool {
	switch string(key) {
	case "ts":
		return p.ts(sc, l)
	case "level":
		return p.str(sc, &l.Level, true)
	case "msg":
		return p.str(sc, &l.Msg, true)
	case "host":
		return p.str(sc, &l.Host, true)
	case "proto":
		return p.str(sc, &l.Proto, true)
	case "session_id":
		return p.detail(sc, &l.SessionID, false)
	case "remote":
		return p.str(sc, &l.Remote, false)
	case "msg_id":
		return p.str(sc, &l.MsgID, false)
	case "mail_from":
		return p.str(sc, &l.MailFrom, false)
	case "message_id":
		return p.detail(sc, &l.MessageID, false)
	case "rcpt":
		return p.rcpt(sc, l)
	case "bytes":
		return p.int(sc, &l.Bytes)
	case "tls":
		return p.boolean(sc, &l.TLS)
	case "auth_user":
		return p.detail(sc, &l.AuthUser, false)
	case "upstream_msg_id":
		return p.detail(sc, &l.UpstreamMsgID, false)
	case "user":
		return p.detail(sc, &l.User, false)
	case "file":
		return p.detail(sc, &l.File, false)
	case "command":
		return p.detail(sc, &l.Command, true)
	case "domain":
		return p.str(sc, &l.Domain, true)
	case "mx":
		return p.detail(sc, &l.MX, true)
	case "mx_addr":
		return p.detail(sc, &l.MXAddr, false)
	case "remote_reply":
		return p.detail(sc, &l.RemoteReply, false)
	case "smtp_code":
		var n int64
		ok := p.int(sc, &n)
		l.SMTPCode = int(n)
		return ok
	case "enhanced":
		return p.str(sc, &l.Enhanced, true)
	case "error":
		return p.str(sc, &l.Error, false)
	case "attempt":
		var n int64
		ok := p.int(sc, &n)
		l.Attempt = int(n)
		return ok
	case "duration_ms":
		return p.int(sc, &l.DurationMS)
	case "next_attempt":
		return p.detail(sc, &l.NextAttempt, false)
	case "bounce_msg_id":
		return p.detail(sc, &l.BounceMsgID, false)
	}
	return sc.skip()
}

// str reads a string value into dst (interned when repeated values are
// expected); a value of another type is skipped and leaves dst empty.
func (p *parser) str(sc *scanner, dst *string, intern bool) bool {
	if sc.peek() != '"' {
		return sc.skip()
	}
	raw, esc, ok := sc.stringBytes()
	if !ok {
		return false
	}
	if esc {
		*dst, ok = unescape(raw)
		return ok
	}
	if !intern {
		*dst = string(raw)
		return true
	}
	if s, hit := p.intern[string(raw)]; hit {
		*dst = s
		return true
	}
	s := string(raw)
	if len(p.intern) < internMax {
		p.intern[s] = s
	}
	*dst = s
	return true
}

func (p *parser) rcpt(sc *scanner, l *Line) bool {
	switch sc.peek() {
	case '"':
		var s string
		ok := p.str(sc, &s, false)
		l.Rcpt = append(l.Rcpt, s)
		return ok
	case '[':
		sc.i++
		sc.ws()
		if sc.eat(']') {
			return true
		}
		for {
			sc.ws()
			var s string
			if !p.str(sc, &s, false) {
				return false
			}
			if s != "" {
				l.Rcpt = append(l.Rcpt, s)
			}
			sc.ws()
			if sc.eat(',') {
				continue
			}
			return sc.eat(']')
		}
	}
	return sc.skip()
}

// int reads an integer; a float keeps its integer part, another type is
// skipped.
func (p *parser) int(sc *scanner, dst *int64) bool {
	c := sc.peek()
	if c != '-' && (c < '0' || c > '9') {
		return sc.skip()
	}
	start := sc.i
	if !sc.skip() {
		return false
	}
	n, neg := int64(0), false
	for i, c := range sc.b[start:sc.i] {
		if i == 0 && c == '-' {
			neg = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

func (p *parser) boolean(sc *scanner, dst *bool) bool {
	*dst = sc.peek() == 't'
	return sc.skip()
}

// ts reads the time: an RFC 3339 string (mtad's encoder) or a number of
// seconds since the epoch (zap's default encoder).
func (p *parser) ts(sc *scanner, l *Line) bool {
	switch c := sc.peek(); {
	case c == '"':
		raw, esc, ok := sc.stringBytes()
		if !ok {
			return false
		}
		if !esc {
			l.TS = parseTS(raw)
		}
		return true
	case c == '-' || c >= '0' && c <= '9':
		start := sc.i
		if !sc.skip() {
			return false
		}
		if f, err := strconv.ParseFloat(string(sc.b[start:sc.i]), 64); err == nil && f > 0 {
			l.TS = int64(f * 1e9)
		}
		return true
	}
	return sc.skip()
}

// parseTS parses an RFC 3339 time, fast for mtad's UTC form
// (2006-01-02T15:04:05.999999999Z); 0 when it is not a time.
func parseTS(b []byte) int64 {
	if t, ok := fastRFC3339(b); ok {
		return t
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

func fastRFC3339(b []byte) (int64, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return 0, false
	}
	frac := b[19 : len(b)-1]
	ns := 0
	if len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return 0, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		ns = n
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC).UnixNano(), true
}

// scanner walks one line of JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	i := s.i
	for i < len(s.b) && (s.b[i] == ' ' || s.b[i] == '\t' || s.b[i] == '\r' || s.b[i] == '\n') {
		i++
	}
	s.i = i
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// stringBytes reads a string and returns its raw contents (escapes left in)
// and whether it has any.
func (s *scanner) stringBytes() (raw []byte, esc, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	// Locals, not s.b and s.i: the loop runs for every byte of every line.
	b, start := s.b, s.i
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], esc, true
		case c == '\\':
			esc = true
			i++
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// rawString reads a key: keys mtalog knows have no escapes, so an escaped
// key is returned raw and matches none of them.
func (s *scanner) rawString() ([]byte, bool) {
	raw, _, ok := s.stringBytes()
	return raw, ok
}

// skip steps over one value of any type, checking only its nesting and its
// strings: enough to find where the next key starts and to refuse a line
// cut short.
func (s *scanner) skip() bool {
	switch c := s.peek(); c {
	case '"':
		_, _, ok := s.stringBytes()
		return ok
	case '{', '[':
		return s.skipNested()
	case 0:
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return s.i > start
		case '"', '{', '[', ':':
			return false
		}
		s.i++
	}
	return false
}

func (s *scanner) skipNested() bool {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			if _, _, ok := s.stringBytes(); !ok {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return true
			}
		}
		s.i++
	}
	return false
}

// unescape decodes a JSON string's contents.
func unescape(raw []byte) (string, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, ok := unicodeEscape(raw[i-1:])
			if !ok {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += n - 2
		default:
			return "", false
		}
	}
	return string(out), true
}

// unicodeEscape decodes \uXXXX at the start of b, with the low half of a
// surrogate pair when one follows; it returns the rune and the bytes used.
func unicodeEscape(b []byte) (rune, int, bool) {
	hex := func(b []byte) (rune, bool) {
		if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
		return rune(n), err == nil
	}
	r, ok := hex(b)
	if !ok {
		return 0, 0, false
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex(b[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12, true
			}
		}
		return utf8.RuneError, 6, true
	}
	return r, 6, true
}
