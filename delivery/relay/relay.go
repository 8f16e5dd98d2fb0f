// Package relay owns outbound delivery over SMTP: finding a domain's mail
// exchangers (the course's fake DNS tables, or real DNS), delivering one
// message to all of one domain's recipients over one connection with the
// smtpclient package, and classifying each recipient's result as done,
// temporary (retry later) or permanent (bounce).
//
// Invariants: Deliver returns exactly one result per recipient, in order; nil
// only when the next MTA accepted the message for that recipient (2xx at the
// end of DATA); a *reply.Reply when the remote refused. Whether a result is
// worth another try is session/reply's Temporary, in one place (a resolution
// miss answers through ResolveError.Permanent). Each recipient's result is
// logged once per attempt, as relay delivered, relay deferred or relay
// bounced (as the queue will take it), with the mail exchanger's name, the
// address the connection reached (mx_addr) and the far side's reply
// (remote_reply, which names its queue id on success). Message bodies are
// never logged.
//
// A message that needs SMTPUTF8 (utf8.go: a non-ASCII envelope address, or
// a UTF-8 header section of a message that came in declared SMTPUTF8) is
// relayed with that parameter only to a hop that offers it; to any other,
// each recipient is refused with a permanent 5.6.7, never downgraded.
//
// Connections are reused through a Pool (pool.go), the relay's connection
// cache: a connection to a mail exchanger address is kept after a message
// for the next one to that address (RSET before each reuse, which also
// finds a connection that died; a dead one is replaced without failing the
// message), for a bounded idle time and number of messages. The pool also
// bounds the connections to one address (relay_concurrency) and backs off
// an address that refused a connection: its messages are deferred, naming
// the refusal ("delivery temporarily suspended: ..."), without dialling
// until the back-off ends.
//
// TLS follows the destination domain's policy (tlspolicy.go): opportunistic
// by default; where it is required (and verified), a connection without it
// is a temporary failure with 4.7.5 naming the policy, and the cache hands
// a domain only connections whose TLS meets its policy.
//
// What goes on MAIL is decided per hop in params.go: SIZE= with the
// message's size as queued (RFC 1870) and BODY=8BITMIME for an 8-bit body
// (RFC 6152) when the hop offers them; a message larger than the hop's
// SIZE limit fails with 552 5.3.4 before MAIL. An 8-bit message for a hop
// without 8BITMIME is converted to 7-bit as it is sent (package downgrade,
// logged converted=8bit-to-qp), after a first pass proved it can be; one
// that cannot fails with 554 5.6.3 and is never sent unconverted.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"gomta/delivery/dsn"
	"gomta/session/logvocab"
	"gomta/session/reply"
	"gomta/session/smtpclient"
)

// Options configure a Relay.
type Options struct {
	LocalName string        // EHLO name; default "localhost"
	Timeout   time.Duration // per SMTP command; default smtpclient.DefaultTimeout
	Logger    *zap.Logger   // nil: no logs; the caller adds proto=relay and host
	// TLS, when set, makes the relay use STARTTLS whenever the next MTA offers
	// it (RFC 3207; opportunistic, RFC 7435: a failed handshake is a failed
	// attempt, plaintext is used only when STARTTLS is not offered).
	TLS *tls.Config
	// Self reports whether a target address (host:port) is one of this
	// host's own SMTP listeners: such a target and every one after it are
	// never tried (mail for the domain would come straight back); when it is
	// the first, the recipients fail with 554 5.4.6 (errLoopsBack). A target
	// named by a host name is checked by the address its connection reached,
	// and closed before any transaction when it is this host.
	Self func(addr string) bool
	// TLSPolicy says, per destination domain, whether TLS is opportunistic
	// (the default), required, or required and verified (tlspolicy.go).
	TLSPolicy *TLSPolicy
	// Pool, when set, keeps connections for the next message to the same
	// address, bounds the connections to one address and backs off an
	// address that refuses connections; nil: one connection per attempt.
	Pool *Pool
}

// errSelf: the connection reached this host itself.
var errSelf = errors.New("relay: the mail exchanger is this host")

// errLoopsBack is the permanent failure of a domain whose best mail
// exchanger is this host itself (RFC 5321 §5.1: an MTA that finds itself
// in the MX list uses only the better ones; RFC 3463 X.4.6 routing loop).
func errLoopsBack(domain string) error {
	return &reply.Reply{Code: reply.CodeTxFailed, Enhanced: reply.EnhLoop, Text: "mail for " + domain + " loops back to myself"}
}

// Relay delivers messages to other MTAs. It holds no per-message state and
// is safe for concurrent use by several delivery workers.
type Relay struct {
	res *Resolver
	opt Options
	log *zap.Logger
}

// New returns a Relay that finds mail exchangers with r.
func New(r *Resolver, opt Options) *Relay {
	log := opt.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Relay{res: r, opt: opt, log: log}
}

// Outcome is what Deliver reports: one result per recipient and the mail
// exchanger that gave them ("" when none was reached).
type Outcome struct {
	MX     string
	MXAddr string // the ip:port the last connection reached; "" when none was made
	TLS    bool   // the last connection was under TLS
	// Reply is the mail exchanger's final reply to the message when it took
	// it ("250 2.0.0 OK queued as ..."); nil otherwise.
	Reply *reply.Reply
	Errs  []error
	// Converted names the conversion the message went through for the
	// hop ("8bit-to-qp", params.go); "" when it went as it is.
	Converted string
	DSN       bool // the mail exchanger that answered offers DSN: it notifies the sender itself
}

// Job is one relay transaction: one message to every recipient of one
// domain, over one connection.
type Job struct {
	MsgID  string // for logs
	Domain string // the recipients' domain, folded (address.Domain)
	// Attempt is the queue's attempt number, and Final tells that the queue
	// bounces what this attempt leaves undelivered: they decide whether a
	// failed recipient is logged as deferred or bounced.
	Attempt int
	Final   bool
	From    string   // the reverse-path; "" for a bounce
	Rcpts   []string // all of Domain
	// Open gives the body; it is called again for each target tried.
	Open func() (io.ReadCloser, error)
	DSN  DSN // passed on when the next hop offers DSN (dsnparams.go)
}

// Deliver delivers j (EHLO, MAIL, RCPT per recipient, DATA, QUIT), trying
// each target of j.Domain in order until one gives results that stand. It
// returns one error per recipient, in order: nil = the next MTA said 250; a
// *reply.Reply with Permanent() for 5xx; anything else temporary. The
// Outcome also names the mail exchanger that answered, for the Remote-MTA
// field of a bounce.
func (rl *Relay) Deliver(ctx context.Context, j Job) (out Outcome) {
	start := time.Now()
	log := rl.log.With(zap.String("msg_id", j.MsgID), zap.String("domain", j.Domain), zap.Int("attempt", j.Attempt))
	out.Errs = make([]error, len(j.Rcpts))
	defer func() {
		if p := recover(); p != nil {
			log.Error("relay panic", zap.Any("error", p), zap.ByteString("stack", debug.Stack()))
			failAll(out.Errs, fmt.Errorf("relay: internal error: %v", p))
		}
		logResults(ctx, log, j, out, start)
	}()
	if len(j.Rcpts) == 0 {
		return out
	}
	targets, err := rl.res.Lookup(ctx, j.Domain)
	if err != nil {
		failAll(out.Errs, err)
		return out
	}
	targets = rl.better(targets)
	if len(targets) == 0 {
		log.Error("mail loops back to myself", zap.Strings("rcpt", j.Rcpts))
		failAll(out.Errs, errLoopsBack(j.Domain))
		return out
	}
	rl.tryTargets(ctx, log, j, targets, &out)
	return out
}

// better cuts targets at the first one that is this host itself.
func (rl *Relay) better(targets []Target) []Target {
	if rl.opt.Self == nil {
		return targets
	}
	for i, t := range targets {
		if rl.opt.Self(t.Addr) {
			return targets[:i]
		}
	}
	return targets
}

// tryTargets tries each target in order until one gives results that stand.
func (rl *Relay) tryTargets(ctx context.Context, log *zap.Logger, j Job, targets []Target, out *Outcome) {
	var last error = &ResolveError{NotFound: true}
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			last = fmt.Errorf("relay: %w", err)
			break
		}
		out.MX, out.MXAddr = t.Host, ""
		errs, err := rl.attempt(ctx, log, j, i+1, t, out)
		if errs != nil {
			out.Errs = errs
			return
		}
		if errors.Is(err, errSelf) {
			if i == 0 {
				log.Error("mail loops back to myself", zap.String("mx", t.Host), zap.Strings("rcpt", j.Rcpts))
				last = errLoopsBack(j.Domain)
			}
			break // the targets from here on are no better than this host
		}
		last = err
	}
	failAll(out.Errs, last)
}

// attempt tries target t, the n-th, for j. It returns per-recipient results when the
// target gave answers that stand (final), or nil and the error that makes
// the next target worth trying (connect failure, greeting or EHLO refused,
// connection lost, 421). It records in out the address the connection
// reached and the final reply to the message.
func (rl *Relay) attempt(ctx context.Context, log *zap.Logger, j Job, n int, t Target, out *Outcome) (errs []error, err error) {
	start := time.Now()
	log = log.With(zap.String("mx", t.Host), zap.Int("target", n))
	defer func() {
		fields := []zap.Field{zap.Int64("duration_ms", time.Since(start).Milliseconds())}
		if out.MXAddr != "" {
			fields = append(fields, zap.String("mx_addr", out.MXAddr))
		}
		if err != nil {
			fields = append(fields, replyFields(err)...)
			fields = append(fields, zap.Error(err))
		}
		log.Info("relay attempt", fields...)
	}()
	cn, err := rl.connect(ctx, log, j.Domain, t, out)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() { rl.opt.Pool.put(t.Addr, cn, keep) }()
	c := cn.c
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	if c.TLS() {
		log = log.With(zap.Bool("tls", true))
	}
	body, err := j.Open()
	if err != nil {
		keep = stop() // nothing was sent on the connection
		// A local problem: another mail exchanger would not help.
		errs = make([]error, len(j.Rcpts))
		failAll(errs, fmt.Errorf("relay: open message: %w", err))
		return errs, nil
	}
	// SMTPUTF8 first: a message that needs it is refused 5.6.7 by a hop
	// without it, whatever conversion it would need besides (5.6.3).
	var utf8 smtpclient.Envelope
	head, uerrs := addSMTPUTF8(&utf8, c, j, body, t.Host)
	if uerrs != nil {
		_ = body.Close()
		keep = stop() // nothing was sent: the connection is as good as before
		return uerrs, nil
	}
	if head != io.Reader(body) { // body could not seek back: what was read, then the rest
		body = readCloser{head, body}
	}
	env, send, conv, err := prepare(c, j, body)
	if err != nil {
		keep = stop()
		errs = make([]error, len(j.Rcpts))
		failAll(errs, err)
		return errs, nil
	}
	defer func() { _ = send.Close() }()
	env.MailParams = append(env.MailParams, utf8.MailParams...)
	errs, err = c.SendEnvelope(withDSN(c, j, env), send)
	out.Converted = conv
	out.DSN, _ = c.Extension("DSN")
	cn.sent++
	// A connection that a stop did not cut, whose transaction ended in an
	// answer (not a lost connection or a 421), is kept for the next message.
	keep = stop() && (err == nil || final(err))
	if err != nil && !final(err) {
		return nil, netError(ctx, t, c.RemoteAddr(), err)
	}
	if err == nil {
		out.Reply = c.LastReply()
	}
	return errs, nil
}

// connect returns a connection to t ready for a transaction (greeted, TLS
// as domain's policy says, not this host), holding one of t's slots in the
// pool: a cached one that meets the policy and still answers RSET (a dead
// one, or one whose TLS falls short, is closed and the next tried), else a
// new one. A refused connection (connect failure or a
// greeting other than 220) backs t off in the pool. It records in out the
// address the connection reached.
func (rl *Relay) connect(ctx context.Context, log *zap.Logger, domain string, t Target, out *Outcome) (*conn, error) {
	pool, pol := rl.opt.Pool, rl.opt.TLSPolicy.For(domain)
	cn, err := pool.get(ctx, t.Addr)
	if err != nil {
		return nil, err
	}
	for ; cn != nil; cn = pool.next(t.Addr) {
		// RSET between messages (RFC 5321 §4.1.1.5) also proves that the
		// cached connection is still alive.
		if !cn.tls.meets(pol, t.Host) {
			closeConn(cn)
			continue
		}
		if err := cn.c.Reset(); err == nil {
			out.MXAddr, out.TLS = cn.c.RemoteAddr().String(), cn.tls.on
			log.Debug("relay connection reused", zap.String("mx_addr", out.MXAddr), zap.Int("messages", cn.sent))
			return cn, nil
		}
		_ = cn.c.Close()
	}
	c, err := smtpclient.Dial(ctx, t.Addr, smtpclient.Options{LocalName: rl.opt.LocalName, Timeout: rl.opt.Timeout})
	if err != nil {
		err = netError(ctx, t, nil, err)
		if refusal(ctx, err) {
			pool.refused(t.Addr, err)
		}
		pool.put(t.Addr, nil, false)
		return nil, err
	}
	out.MXAddr = c.RemoteAddr().String()
	if rl.opt.Self != nil && rl.opt.Self(out.MXAddr) {
		_ = c.Close()
		pool.put(t.Addr, nil, false)
		return nil, errSelf
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	ct, err := rl.hello(c, domain, t, pol)
	stop()
	if err != nil {
		err = helloError(ctx, t, c.RemoteAddr(), err)
		_ = c.Close()
		pool.put(t.Addr, nil, false)
		return nil, err
	}
	out.TLS = ct.on
	return &conn{c: c, tls: ct}, nil
}

// refusal reports whether err, from a dial, is the destination refusing
// connections: the connect failed, or the greeting was not 220. A stop is
// not.
func refusal(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ce *ConnError
	var r *reply.Reply
	return errors.As(err, &ce) && ce.Enhanced == enhNoAnswer || errors.As(err, &r)
}

// final reports whether a failed transaction's result stands: the remote
// answered, rather than the connection failing. A 421 is the server closing
// the channel (RFC 5321 §3.8): the next mail exchanger may do better, as
// after a failed connect.
func final(err error) bool {
	var r *reply.Reply
	return errors.As(err, &r) && r.Code != reply.CodeUnavailable
}

// ctxErr prefers the context's error to the closed-connection error it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("relay: %w (%v)", cerr, err)
	}
	return err
}

// failAll sets every recipient's result to err.
func failAll(errs []error, err error) {
	for i := range errs {
		errs[i] = err
	}
}

// logResults writes one line per recipient of j: relay delivered (info),
// relay deferred (info) or relay bounced (warn), decided as the queue will
// take the result: bounced when permanent, or on the final attempt unless a
// stop cut it short. remote_reply is the far side's reply as a line: its
// final reply to the message, or its refusal.
func logResults(ctx context.Context, log *zap.Logger, j Job, out Outcome, start time.Time) {
	d := time.Since(start).Milliseconds()
	for i, rcpt := range j.Rcpts {
		err := out.Errs[i]
		fields := []zap.Field{zap.String("rcpt", rcpt), zap.String("mx", out.MX)}
		if out.MXAddr != "" {
			fields = append(fields, zap.String("mx_addr", out.MXAddr), zap.Bool("tls", out.TLS))
		}
		if err == nil {
			if out.Reply != nil {
				fields = append(fields, zap.String("remote_reply", out.Reply.Error()),
					zap.Int("smtp_code", out.Reply.Code), zap.String("enhanced", out.Reply.Enhanced))
			}
			if out.Converted != "" {
				fields = append(fields, zap.String(logvocab.Converted, out.Converted))
			}
			log.Info("relay delivered", append(fields, zap.Int64("duration_ms", d))...)
			continue
		}
		var r *reply.Reply
		if out.MXAddr != "" && errors.As(err, &r) {
			fields = append(fields, zap.String("remote_reply", r.Error()))
		}
		fields = append(fields, replyFields(err)...)
		fields = append(fields, zap.Int64("duration_ms", d), zap.Error(err))
		if reply.Temporary(err) && !(j.Final && ctx.Err() == nil) {
			log.Info("relay deferred", fields...)
		} else {
			log.Warn("relay bounced", fields...)
		}
	}
}

// replyFields are smtp_code and enhanced when err carries a reply.
func replyFields(err error) []zap.Field {
	var r *reply.Reply
	if errors.As(err, &r) {
		return []zap.Field{zap.Int("smtp_code", r.Code), zap.String("enhanced", r.Enhanced)}
	}
	var re *ResolveError
	if errors.As(err, &re) {
		return []zap.Field{zap.String("enhanced", re.Enhanced())}
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		return []zap.Field{zap.String("enhanced", ce.Enhanced)}
	}
	return nil
}

// Permanent reports whether the miss is final (no mail exchanger is known
// for the domain), for reply.Temporary, which classifies every recipient's
// result for the delivery worker.
func (e *ResolveError) Permanent() bool { return !e.Temporary() }

// Failure describes a recipient's failure for a bounce (RFC 3464): the
// remote reply when there was one, else the connection's or the
// resolution's status and text, else the error text with no code.
func Failure(rcpt, mx string, err error) dsn.Failure {
	f := dsn.Failure{Rcpt: rcpt}
	if err == nil {
		return f
	}
	var r *reply.Reply
	var re *ResolveError
	var ce *ConnError
	switch {
	case errors.As(err, &r):
		f.Code, f.Enhanced, f.Text, f.RemoteMTA = r.Code, r.Enhanced, r.Text, mx
	case errors.As(err, &ce):
		f.Enhanced, f.Text = ce.Enhanced, ce.Error()
	case errors.As(err, &re):
		f.Enhanced, f.Text = re.Enhanced(), re.Error()
	default:
		f.Text = err.Error()
	}
	return f
}

// readCloser reads from Reader and closes Closer.
type readCloser struct {
	io.Reader
	io.Closer
}
