// Package smtpclient is gomta's one SMTP client (RFC 5321), used by the relay
// worker, the mail agent and the load generator: dial (plain or implicit TLS,
// RFC 8314), EHLO/HELO, STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954),
// MAIL, RCPT, DATA with dot-stuffing or BDAT chunks (RFC 3030, for a large
// body to a server that offers CHUNKING), RSET, NOOP, QUIT, with optional
// PIPELINING and per-step timing. Negative replies come back as
// *reply.Reply errors (session/reply: Temporary/Permanent).
//
// Invariants: every read and write runs under a deadline (Options.Timeout per
// command); replies are bounded in line length and line count; a body is
// streamed, never buffered whole; once the connection is broken (network error,
// unparsable reply, 421) every later call returns the same error. Positive
// replies on the hot path allocate nothing: the reply buffer is reused.
package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"gomta/session/address"
	"gomta/session/reply"
)

// Defaults for a zero Options.
const (
	// DefaultTimeout is the per-command timeout: RFC 5321 §4.5.3.2 asks for
	// at least 5 minutes on MAIL, RCPT and the DATA block.
	DefaultTimeout   = 5 * time.Minute
	defaultLocalName = "localhost"
)

// ErrClosed is returned by calls on a client that was closed.
var ErrClosed = errors.New("smtpclient: connection closed")

// Options configure a client. The zero value is usable.
type Options struct {
	LocalName string        // EHLO/HELO argument; default "localhost"
	Timeout   time.Duration // per command (connect, each reply); default 5m per RFC 5321 §4.5.3.2
	TLSConfig *tls.Config   // for DialTLS, and StartTLS(nil); ServerName defaults to the dialled host
	// InsecureAuth lets Auth send a password without TLS to a non-loopback
	// server; by default Auth refuses (ErrInsecureAuth).
	InsecureAuth bool
	// ChunkingOver is the body size above which Send uses BDAT (RFC 3030)
	// instead of DATA when the server offers CHUNKING and the body's size is
	// known (an in-memory reader's Len, a regular file's size); 0 =
	// DefaultChunkingOver, negative = never.
	ChunkingOver int64
	// Trace, when set, is called after each step with its name ("connect",
	// "greeting", "ehlo", "mail", "rcpt", "data", "data-end", "bdat", "quit", ...) and duration.
	Trace func(step string, d time.Duration)
}

func (o Options) withDefaults() Options {
	if o.LocalName == "" {
		o.LocalName = defaultLocalName
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

func (o *Options) trace(step string, start time.Time) {
	if o.Trace != nil {
		o.Trace(step, time.Since(start))
	}
}

// Client is one SMTP client connection. Not safe for concurrent use, except
// that Close may be called from another goroutine to abort a blocked call.
type Client struct {
	conn       net.Conn  // the connection as dialled: deadlines and Close
	tls        *tls.Conn // the TLS layer (implicit or after StartTLS); r and w use it; nil = plain
	host       string    // the dialled host, for the TLS ServerName
	r          *bufio.Reader
	w          *bufio.Writer
	opt        Options
	greeting   string
	ext        map[string]string // EHLO keywords (upper case) → parameter; nil before Hello
	helloDone  bool
	pipelining bool // PIPELINING announced (RFC 2920)
	rb         replyBuf
	err        error       // sticky: the connection is unusable
	closed     atomic.Bool // Close was called (possibly from another goroutine)
}

// usable returns the sticky error, or ErrClosed after Close.
func (c *Client) usable() error {
	if c.err != nil {
		return c.err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Dial connects to addr ("host:port") and reads the greeting. ctx bounds the
// connect and the greeting; later commands are bounded by Options.Timeout.
func Dial(ctx context.Context, addr string, opt Options) (*Client, error) {
	return dialConn(ctx, addr, opt, dialPlain)
}

// DialTLS is Dial for implicit TLS (submissions, RFC 8314 §3.3): the TLS
// handshake, under Options.TLSConfig, comes before the greeting. ctx bounds
// both.
func DialTLS(ctx context.Context, addr string, opt Options) (*Client, error) {
	return dialConn(ctx, addr, opt, dialImplicitTLS)
}

// dialMode says when TLS starts on a new connection.
type dialMode int

const (
	dialPlain       dialMode = iota // plain text; TLS later, if at all, with StartTLS
	dialImplicitTLS                 // the TLS handshake before the greeting (RFC 8314 §3.3)
)

func dialConn(ctx context.Context, addr string, opt Options, mode dialMode) (*Client, error) {
	opt = opt.withDefaults()
	start := time.Now()
	host, _, _ := net.SplitHostPort(addr)
	nd := &net.Dialer{Timeout: opt.Timeout}
	var conn net.Conn
	var err error
	if mode == dialImplicitTLS {
		td := tls.Dialer{NetDialer: nd, Config: tlsConfigFor(opt.TLSConfig, host)}
		conn, err = td.DialContext(ctx, "tcp", addr) // handshake included
	} else {
		conn, err = nd.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("smtpclient: dial %s: %w", addr, err)
	}
	opt.trace("connect", start)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, err := NewClient(conn, opt)
	if c != nil {
		c.host = host
	}
	if !stop() {
		// ctx ended while we waited for the greeting: the conn is closed.
		return nil, fmt.Errorf("smtpclient: greeting from %s: %w", addr, ctx.Err())
	}
	return c, err
}

// NewClient reads the greeting on an established connection. A greeting
// other than 220 is returned as a *reply.Reply and the connection is closed.
func NewClient(conn net.Conn, opt Options) (*Client, error) {
	opt = opt.withDefaults()
	c := &Client{
		conn: conn,
		r:    bufio.NewReaderSize(conn, maxReplyLine),
		w:    bufio.NewWriterSize(conn, 4096),
		opt:  opt,
	}
	c.tls, _ = conn.(*tls.Conn)
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		c.host = a.IP.String()
	}
	start := time.Now()
	c.deadline()
	if err := readReply(c.r, &c.rb); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("smtpclient: greeting: %w", err)
	}
	c.opt.trace("greeting", start)
	if c.rb.code != reply.CodeReady {
		_ = conn.Close()
		return nil, c.rb.reply()
	}
	c.greeting = string(c.rb.text)
	return c, nil
}

// RemoteAddr is the address the connection reached.
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// LastReply is the last reply the server sent, as a value: after a Send or
// Data that succeeded, the final reply to the message ("250 2.0.0 OK queued
// as ...", which names the far side's queue id for gomta and Postfix), or
// its refusal. Nil before any reply. It allocates; the hot path does not
// call it.
func (c *Client) LastReply() *reply.Reply {
	if c.rb.code == 0 {
		return nil
	}
	return c.rb.reply()
}

// Greeting is the server's 220 text.
func (c *Client) Greeting() string { return c.greeting }

// Hello sends EHLO, falling back to HELO when EHLO is refused with a 5xx.
func (c *Client) Hello() error {
	if err := c.usable(); err != nil {
		return err
	}
	c.cmd("EHLO ", c.opt.LocalName, "")
	code, err := c.roundTrip("ehlo")
	if err != nil {
		return err
	}
	if code/100 == 2 {
		c.parseExtensions()
		c.helloDone = true
		return nil
	}
	if code/100 != 5 {
		return c.negative()
	}
	c.cmd("HELO ", c.opt.LocalName, "")
	if _, err := c.roundTrip("helo"); err != nil {
		return err
	}
	if err := c.expect(2); err != nil {
		return err
	}
	c.ext = map[string]string{}
	c.pipelining = false
	c.helloDone = true
	return nil
}

// parseExtensions reads the EHLO keywords (RFC 5321 §4.1.1.1) from the reply
// buffer; the first line is the server's name.
func (c *Client) parseExtensions() {
	c.ext = make(map[string]string)
	text := string(c.rb.text)
	_, rest, _ := strings.Cut(text, "\n")
	for line := range strings.SplitSeq(rest, "\n") {
		kw, param, _ := strings.Cut(strings.TrimSpace(line), " ")
		if kw == "" {
			continue
		}
		c.ext[strings.ToUpper(kw)] = param
	}
	_, c.pipelining = c.ext["PIPELINING"]
}

// ensureHello sends EHLO when no Hello was done yet.
func (c *Client) ensureHello() error {
	if c.helloDone {
		return c.usable()
	}
	return c.Hello()
}

// Extension reports whether the server announced an EHLO keyword, and its parameter.
func (c *Client) Extension(name string) (bool, string) {
	p, ok := c.ext[strings.ToUpper(name)]
	return ok, p
}

// Mail sends MAIL FROM:<from> with optional parameters (e.g. "SIZE=1234").
// from "" is the null reverse-path.
func (c *Client) Mail(from string, params ...string) error {
	if err := c.ensureHello(); err != nil {
		return err
	}
	if err := checkPath(from, reply.EnhBadFromSyntax); err != nil {
		return err
	}
	if err := checkParams(params, reply.EnhBadFromSyntax); err != nil {
		return err
	}
	c.writeMail(from, params)
	if _, err := c.roundTrip("mail"); err != nil {
		return err
	}
	return c.expect(2)
}

// Rcpt sends RCPT TO:<to> with optional parameters (e.g. "NOTIFY=NEVER").
func (c *Client) Rcpt(to string, params ...string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := checkRcpt(to); err != nil {
		return err
	}
	if err := checkParams(params, reply.EnhBadRcptSyntax); err != nil {
		return err
	}
	c.writeRcpt(to, params)
	if _, err := c.roundTrip("rcpt"); err != nil {
		return err
	}
	return c.expect(2)
}

// Data sends DATA, the body (dot-stuffed, bare LF turned into CRLF), CRLF.CRLF,
// and returns the final reply. A negative final reply is returned both as the
// reply and as the error; a refused DATA command gives (nil, reply).
func (c *Client) Data(body io.Reader) (*reply.Reply, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	c.cmd("DATA", "", "")
	if _, err := c.roundTrip("data"); err != nil {
		return nil, err
	}
	if c.rb.code != reply.CodeStartInput {
		return nil, c.negative()
	}
	if err := c.dataBody(body); err != nil {
		var r *reply.Reply
		if errors.As(err, &r) {
			return r, err
		}
		return nil, err
	}
	return c.rb.reply(), nil
}

// dataBody streams the body after a 354 and reads the final reply into
// c.rb; a negative one is returned as the error. A positive one allocates
// nothing (Send does not need it as a value).
func (c *Client) dataBody(body io.Reader) error {
	start := time.Now()
	if err := c.writeBody(body); err != nil {
		return err
	}
	if err := c.flushAndRead(); err != nil {
		return err
	}
	c.opt.trace("data-end", start)
	return c.expect(2)
}

// Reset sends RSET.
func (c *Client) Reset() error {
	if err := c.usable(); err != nil {
		return err
	}
	c.cmd("RSET", "", "")
	if _, err := c.roundTrip("rset"); err != nil {
		return err
	}
	return c.expect(2)
}

// Noop sends NOOP.
func (c *Client) Noop() error {
	if err := c.usable(); err != nil {
		return err
	}
	c.cmd("NOOP", "", "")
	if _, err := c.roundTrip("noop"); err != nil {
		return err
	}
	return c.expect(2)
}

// Quit sends QUIT, waits for the reply and closes the connection. On a
// connection that is already broken it only closes.
func (c *Client) Quit() error {
	if c.usable() != nil {
		_ = c.Close()
		return nil
	}
	c.cmd("QUIT", "", "")
	_, err := c.roundTrip("quit")
	if err == nil && c.rb.code != reply.CodeClosing {
		err = c.rb.reply()
	}
	_ = c.Close()
	return err
}

// Close closes the connection without QUIT. It may be called from another
// goroutine to abort a call in progress.
func (c *Client) Close() error {
	c.closed.Store(true)
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// cmd buffers one command line: a + b + c + CRLF (avoids building a string).
func (c *Client) cmd(a, b, d string) {
	_, _ = c.w.WriteString(a)
	_, _ = c.w.WriteString(b)
	_, _ = c.w.WriteString(d)
	_, _ = c.w.WriteString("\r\n")
}

func (c *Client) writeMail(from string, params []string) { c.writePath("MAIL FROM:<", from, params) }

func (c *Client) writeRcpt(to string, params []string) { c.writePath("RCPT TO:<", to, params) }

// writePath buffers verb + path + ">" and the parameters, each after a space.
func (c *Client) writePath(verb, path string, params []string) {
	_, _ = c.w.WriteString(verb)
	_, _ = c.w.WriteString(path)
	_ = c.w.WriteByte('>')
	for _, p := range params {
		_ = c.w.WriteByte(' ')
		_, _ = c.w.WriteString(p)
	}
	_, _ = c.w.WriteString("\r\n")
}

// checkParams refuses ESMTP parameters that would break the command line
// (RFC 5321 §4.1.2: esmtp-keyword ["=" esmtp-value], no SP, CR or LF).
func checkParams(params []string, enh string) error {
	for _, p := range params {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return badArgs(enh, "bad ESMTP parameter")
		}
	}
	return nil
}

// roundTrip flushes the buffered command, reads its reply into c.rb and
// traces the step. Only transport and protocol errors are returned.
func (c *Client) roundTrip(step string) (int, error) {
	start := time.Now()
	if err := c.flushAndRead(); err != nil {
		return 0, err
	}
	c.opt.trace(step, start)
	return c.rb.code, nil
}

// flushAndRead sends what is buffered and reads one reply, under a deadline.
func (c *Client) flushAndRead() error {
	c.deadline()
	if err := c.w.Flush(); err != nil {
		return c.fail(err)
	}
	return c.read()
}

// read reads one reply under a fresh deadline.
func (c *Client) read() error {
	c.deadline()
	if err := readReply(c.r, &c.rb); err != nil {
		return c.fail(err)
	}
	return nil
}

// expect returns nil when the last reply is of class want (2 or 3), else the
// reply as an error.
func (c *Client) expect(want int) error {
	if c.rb.code/100 == want {
		return nil
	}
	return c.negative()
}

// negative returns the last reply as an error, noting a 421.
func (c *Client) negative() error {
	r := c.rb.reply()
	c.noteClosing(r)
	return r
}

// noteClosing makes a 421 sticky: the server is closing the channel
// (RFC 5321 §3.8), so nothing more can be sent.
func (c *Client) noteClosing(r *reply.Reply) {
	if r.Code == reply.CodeUnavailable {
		c.err = r
		_ = c.conn.Close()
	}
}

// fail records a transport or protocol error, closes the connection and
// returns the sticky error.
func (c *Client) fail(err error) error {
	if c.err == nil {
		c.err = fmt.Errorf("smtpclient: %w", err)
	}
	_ = c.conn.Close()
	return c.err
}

func (c *Client) deadline() {
	_ = c.conn.SetDeadline(time.Now().Add(c.opt.Timeout))
}

// checkPath refuses a path that would break the command line or exceed
// address.MaxPath (RFC 5321 §4.5.3.1.3) before anything is sent.
func checkPath(p, enh string) error {
	if len(p) > address.MaxPath || strings.ContainsAny(p, "\r\n<>") {
		return badArgs(enh, "bad address syntax")
	}
	return nil
}

func checkRcpt(to string) error {
	if to == "" {
		return badArgs(reply.EnhBadRcptSyntax, "empty recipient")
	}
	return checkPath(to, reply.EnhBadRcptSyntax)
}

// badArgs is a client-side refusal shaped like the reply a server would give,
// so callers classify it the same way (permanent).
func badArgs(enh, text string) *reply.Reply {
	return &reply.Reply{Code: reply.CodeSyntaxParam, Enhanced: enh, Text: text + " (client)"}
}
