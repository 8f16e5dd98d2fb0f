// Package pop3client is gomta's one POP3 client (RFC 1939, RFC 2449), used by the
// mail agent, the load generator and tests: plain or implicit TLS (DialTLS,
// RFC 8314), STLS (RFC 2595), USER/PASS and AUTH PLAIN (RFC 5034, RFC 4616).
// A server -ERR comes back as *Error carrying the server's own words.
//
// Every command runs under its own deadline (Options.Timeout). Multi-line
// replies are dot-unstuffed with their CRLF line endings kept, so that a
// retrieved message has exactly the octets the server's LIST announced. After
// an I/O or protocol error the connection is unusable and every later call
// returns that error.
package pop3client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is the per-command deadline when Options.Timeout is zero.
const DefaultTimeout = time.Minute

// maxStatusLine bounds a status line or a listing line. RFC 2449 §4 limits
// responses to 512 octets; a little slack is kept for lax servers.
const maxStatusLine = 4096

// Error is a -ERR reply: Text is the server's words (with any [CODE] kept).
type Error struct{ Text string }

func (e *Error) Error() string { return "-ERR " + e.Text }

// Code returns the RFC 2449 response code at the start of Text ("IN-USE",
// "AUTH", "SYS/TEMP", ...), or "" when there is none.
func (e *Error) Code() string {
	if !strings.HasPrefix(e.Text, "[") {
		return ""
	}
	code, _, found := strings.Cut(e.Text[1:], "]")
	if !found {
		return ""
	}
	return code
}

// ErrProtocol wraps replies that are neither +OK nor -ERR, and malformed
// listings.
var ErrProtocol = errors.New("pop3client: protocol error")

// Options configure a client. The zero value is usable.
type Options struct {
	Timeout time.Duration                      // per command; default 1m
	Trace   func(step string, d time.Duration) // optional per-step timing
}

// MsgInfo is one line of LIST or UIDL.
type MsgInfo struct {
	Num  int
	Size int64  // LIST
	UID  string // UIDL
}

// Client is one POP3 connection. Not safe for concurrent use.
type Client struct {
	conn     net.Conn // the TCP connection, or TLS over it
	host     string   // server name for certificate checks when the tls.Config has none
	tls      bool
	r        *bufio.Reader
	w        *bufio.Writer
	opt      Options
	greeting string
	err      error // sticky I/O or protocol error
}

// Dial connects to addr and reads the +OK greeting. ctx bounds the dial and
// the greeting.
func Dial(ctx context.Context, addr string, opt Options) (*Client, error) {
	var d net.Dialer
	return dial(ctx, addr, opt, func() (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) })
}

// DialTLS connects to an implicit-TLS port (pop3s, RFC 8314 §3.3), runs the
// handshake with cfg and reads the greeting. When cfg has no ServerName the
// host part of addr is checked. ctx bounds the dial, handshake and greeting.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config, opt Options) (*Client, error) {
	host, _, _ := net.SplitHostPort(addr)
	d := tls.Dialer{Config: withServerName(cfg, host)}
	return dial(ctx, addr, opt, func() (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) })
}

func dial(ctx context.Context, addr string, opt Options, connect func() (net.Conn, error)) (*Client, error) {
	start := time.Now()
	conn, err := connect()
	if err != nil {
		return nil, fmt.Errorf("pop3client: dial %s: %w", addr, err)
	}
	opt.trace("dial", start)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	c, err := NewClient(conn, opt)
	if !stop() && err == nil {
		// ctx ended while the greeting was read: the deadline may be poisoned.
		c.Close()
		return nil, fmt.Errorf("pop3client: greeting: %w", ctx.Err())
	}
	if err == nil {
		c.host, _, _ = net.SplitHostPort(addr)
	}
	return c, err
}

// withServerName returns cfg, or a copy of it naming host when it names no
// server and verifies certificates.
func withServerName(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName != "" || cfg.InsecureSkipVerify || host == "" {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	return cfg
}

// NewClient reads the greeting on an established connection. On error the
// connection is closed.
func NewClient(conn net.Conn, opt Options) (*Client, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn), opt: opt}
	if tc, ok := conn.(*tls.Conn); ok {
		c.tls = true
		c.host = tc.ConnectionState().ServerName
	} else if ra, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		c.host = ra.IP.String()
	}
	start := time.Now()
	if err := c.conn.SetDeadline(start.Add(opt.Timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3client: greeting: %w", err)
	}
	text, err := c.readStatus()
	c.opt.trace("greeting", start)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3client: greeting: %w", err)
	}
	c.greeting = text
	return c, nil
}

func (o Options) trace(step string, start time.Time) {
	if o.Trace != nil {
		o.Trace(step, time.Since(start))
	}
}

// Greeting is the text of the server's +OK greeting.
func (c *Client) Greeting() string { return c.greeting }

// TLS reports whether the connection is under TLS (DialTLS or StartTLS).
func (c *Client) TLS() bool { return c.tls }

// StartTLS sends STLS (RFC 2595 §4) and runs the TLS handshake with cfg
// (cfg without ServerName checks the dialled host). A -ERR is returned as
// *Error and the connection stays usable in plaintext. Anything the server
// sent after its +OK and before the handshake is a protocol error (response
// injection). Capabilities must be asked again afterwards.
func (c *Client) StartTLS(cfg *tls.Config) error {
	if c.tls {
		return errors.New("pop3client: STLS: TLS already active")
	}
	if _, err := c.cmd("STLS", "STLS"); err != nil {
		return err
	}
	start := time.Now()
	defer c.opt.trace("tls", start)
	if c.r.Buffered() > 0 {
		return c.broken(fmt.Errorf("%w: data after +OK to STLS", ErrProtocol))
	}
	tc := tls.Client(c.conn, withServerName(cfg, c.host))
	if err := tc.SetDeadline(time.Now().Add(c.opt.Timeout)); err != nil {
		return c.broken(err)
	}
	if err := tc.Handshake(); err != nil {
		return c.broken(fmt.Errorf("tls handshake: %w", err))
	}
	c.conn = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	c.tls = true
	return nil
}

// maxCommandLine is RFC 2449 §4's limit on a command line, CRLF included;
// RFC 5034 §4 sends a longer initial response after a "+ " instead.
const maxCommandLine = 255

// Auth logs in with SASL PLAIN (RFC 5034, RFC 4616), authorization identity
// empty. A rejected login is an *Error (e.g. "[AUTH] ...").
func (c *Client) Auth(user, pass string) error {
	start := time.Now()
	defer c.opt.trace("AUTH", start)
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if line := "AUTH PLAIN " + resp; len(line)+2 <= maxCommandLine {
		if err := c.send(line); err != nil {
			return err
		}
		_, err := c.status()
		return err
	}
	if err := c.send("AUTH PLAIN"); err != nil {
		return err
	}
	line, err := c.readLine(maxStatusLine)
	if err != nil {
		return c.broken(err)
	}
	if t := string(trimEOL(line)); t != "+" && !strings.HasPrefix(t, "+ ") {
		// No challenge: the status line says why (or is a protocol error).
		_, err := parseStatus(t)
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		if err == nil {
			err = fmt.Errorf("%w: +OK to AUTH without credentials", ErrProtocol)
		}
		return c.broken(err)
	}
	if err := c.send(resp); err != nil {
		return err
	}
	_, err = c.status()
	return err
}

// Capa returns the capability lines (RFC 2449 §5).
func (c *Client) Capa() ([]string, error) {
	var lines []string
	_, err := c.multi("CAPA", func(line []byte) error {
		lines = append(lines, string(trimEOL(line)))
		return nil
	})
	return lines, err
}

// User sends USER name.
func (c *Client) User(name string) error { _, err := c.cmd("USER", "USER "+name); return err }

// Pass sends PASS pass.
func (c *Client) Pass(pass string) error { _, err := c.cmd("PASS", "PASS "+pass); return err }

// Login sends USER then PASS.
func (c *Client) Login(user, pass string) error {
	if err := c.User(user); err != nil {
		return err
	}
	return c.Pass(pass)
}

// Stat returns the number and total size of messages not marked deleted.
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.cmd("STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	var m MsgInfo
	if m, err = parseSize(text); err != nil {
		return 0, 0, err
	}
	return m.Num, m.Size, nil
}

// List returns the scan listing of every message not marked deleted.
func (c *Client) List() ([]MsgInfo, error) {
	return c.listing("LIST", parseSize)
}

// ListOne returns the scan listing of message n.
func (c *Client) ListOne(n int) (MsgInfo, error) {
	text, err := c.cmd("LIST", "LIST "+strconv.Itoa(n))
	if err != nil {
		return MsgInfo{}, err
	}
	return parseSize(text)
}

// Uidl returns the unique-id listing of every message not marked deleted.
func (c *Client) Uidl() ([]MsgInfo, error) {
	return c.listing("UIDL", parseUID)
}

// UidlOne returns the unique-id listing of message n.
func (c *Client) UidlOne(n int) (MsgInfo, error) {
	text, err := c.cmd("UIDL", "UIDL "+strconv.Itoa(n))
	if err != nil {
		return MsgInfo{}, err
	}
	return parseUID(text)
}

// Retr returns message n, dot-unstuffed, CRLF kept.
func (c *Client) Retr(n int) ([]byte, error) {
	var b bytes.Buffer
	_, err := c.RetrTo(n, &b)
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RetrTo streams message n to w (dot-unstuffed, CRLF kept) and returns the
// octets written, without holding the message in memory.
func (c *Client) RetrTo(n int, w io.Writer) (int64, error) {
	return c.body("RETR", "RETR "+strconv.Itoa(n), w)
}

// Top returns the headers and the first lines body lines of message n.
func (c *Client) Top(n, lines int) ([]byte, error) {
	var b bytes.Buffer
	if _, err := c.body("TOP", "TOP "+strconv.Itoa(n)+" "+strconv.Itoa(lines), &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Dele marks message n deleted.
func (c *Client) Dele(n int) error { _, err := c.cmd("DELE", "DELE "+strconv.Itoa(n)); return err }

// Rset unmarks all messages marked deleted.
func (c *Client) Rset() error { _, err := c.cmd("RSET", "RSET"); return err }

// Noop does nothing but get a +OK.
func (c *Client) Noop() error { _, err := c.cmd("NOOP", "NOOP"); return err }

// Quit sends QUIT (which commits deletions) and closes the connection. A
// -ERR (e.g. the deletions could not be committed) is returned as *Error.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT", "QUIT")
	cerr := c.conn.Close()
	if err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("pop3client: close: %w", cerr)
	}
	return nil
}

// Close closes the connection without QUIT: the server commits nothing.
func (c *Client) Close() error {
	if c.err == nil {
		c.err = net.ErrClosed
	}
	return c.conn.Close()
}

// cmd sends one command line and reads its status line, returning the text
// after "+OK ".
func (c *Client) cmd(step, line string) (string, error) {
	start := time.Now()
	defer c.opt.trace(step, start)
	if err := c.send(line); err != nil {
		return "", err
	}
	return c.status()
}

// multi sends a command with a multi-line reply and feeds each unstuffed
// body line (terminator included) to each.
func (c *Client) multi(step string, each func(line []byte) error) (string, error) {
	start := time.Now()
	defer c.opt.trace(step, start)
	if err := c.send(step); err != nil {
		return "", err
	}
	text, err := c.status()
	if err != nil {
		return "", err
	}
	return text, c.readBody(each)
}

// body runs a command whose multi-line reply is copied to w.
func (c *Client) body(step, line string, w io.Writer) (int64, error) {
	start := time.Now()
	defer c.opt.trace(step, start)
	if err := c.send(line); err != nil {
		return 0, err
	}
	if _, err := c.status(); err != nil {
		return 0, err
	}
	var n int64
	var werr error
	err := c.readBody(func(line []byte) error {
		if werr != nil {
			return nil // drain to stay in step
		}
		m, err := w.Write(line)
		n += int64(m)
		werr = err
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// listing runs LIST or UIDL without argument.
func (c *Client) listing(step string, parse func(string) (MsgInfo, error)) ([]MsgInfo, error) {
	var out []MsgInfo
	_, err := c.multi(step, func(line []byte) error {
		m, err := parse(string(trimEOL(line)))
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// send writes one command line under a fresh per-command deadline.
func (c *Client) send(line string) error {
	if c.err != nil {
		return c.err
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.opt.Timeout)); err != nil {
		return c.broken(err)
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return c.broken(err)
	}
	return nil
}

// status reads a status line: +OK returns its text, -ERR an *Error.
func (c *Client) status() (string, error) {
	text, err := c.readStatus()
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return "", pe
		}
		return "", c.broken(err)
	}
	return text, nil
}

func (c *Client) readStatus() (string, error) {
	line, err := c.readLine(maxStatusLine)
	if err != nil {
		return "", err
	}
	return parseStatus(string(trimEOL(line)))
}

// parseStatus reads a status line without its CRLF.
func parseStatus(s string) (string, error) {
	switch {
	case s == "+OK":
		return "", nil
	case strings.HasPrefix(s, "+OK "):
		return s[4:], nil
	case s == "-ERR":
		return "", &Error{}
	case strings.HasPrefix(s, "-ERR "):
		return "", &Error{Text: s[5:]}
	}
	return "", fmt.Errorf("%w: status line %q", ErrProtocol, truncate(s))
}

// readBody reads multi-line body lines up to the "." terminator, removing
// the stuffed dot (RFC 1939 §3) and keeping line endings. A callback error
// stops the reading and breaks the connection (it is out of step).
func (c *Client) readBody(each func(line []byte) error) error {
	// Bounded by the per-command deadline: each pass consumes input.
	for {
		line, err := c.readLine(0)
		if err != nil {
			return c.broken(err)
		}
		if t := trimEOL(line); len(t) == 1 && t[0] == '.' && len(line) > 1 {
			return nil
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if err := each(line); err != nil {
			return c.broken(err)
		}
	}
}

// readLine returns one line with its terminator. limit > 0 bounds its
// length; 0 means any length (message lines, bounded by the deadline).
func (c *Client) readLine(limit int) ([]byte, error) {
	var buf []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		if limit > 0 && len(buf)+len(frag) > limit {
			return nil, fmt.Errorf("%w: line longer than %d octets", ErrProtocol, limit)
		}
		if err == nil && buf == nil {
			return frag, nil // common case: no copy
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		return buf, nil
	}
}

func (c *Client) broken(err error) error {
	if c.err == nil {
		c.err = fmt.Errorf("pop3client: %w", err)
		c.conn.Close()
	}
	return c.err
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// parseSize reads "n size" (STAT, LIST).
func parseSize(text string) (MsgInfo, error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return MsgInfo{}, fmt.Errorf("%w: listing %q", ErrProtocol, truncate(text))
	}
	n, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return MsgInfo{}, fmt.Errorf("%w: listing %q", ErrProtocol, truncate(text))
	}
	return MsgInfo{Num: n, Size: size}, nil
}

// parseUID reads "n uid" (UIDL).
func parseUID(text string) (MsgInfo, error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return MsgInfo{}, fmt.Errorf("%w: unique-id listing %q", ErrProtocol, truncate(text))
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return MsgInfo{}, fmt.Errorf("%w: unique-id listing %q", ErrProtocol, truncate(text))
	}
	return MsgInfo{Num: n, UID: f[1]}, nil
}
