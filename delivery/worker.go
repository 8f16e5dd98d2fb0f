// Package delivery owns what happens to a spooled message: a Worker (the queue's
// Handler) splits its recipients by domain once, hands local recipients to their
// mailbox actors (delivery/mailbox) and other domains to the relay worker
// (delivery/relay), at most MaxRelay relay transactions at once per host (the
// relay's pool bounds them per mail exchanger address under that), and
// reports one result per recipient: done, temporary or permanent (a property
// of the error, reply.Temporary), with what a bounce must say. The queue owns
// bounces; the Worker writes their text (RFC 3464, delivery/dsn). A message
// that has looped (more than MaxReceived Received: fields, RFC 5321 §6.3) is
// never relayed: its remote recipients fail with 554 5.4.6. A delivered
// recipient's Result says which success notice it gets if it asked for one
// (RFC 3461 NOTIFY=SUCCESS): delivered (local), relayed (a next hop without
// DSN), or none (a next hop with DSN, to which the relay passed the
// parameters on). Each recipient's
// result is counted as the queue will take it (Worker.Metrics).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"gomta/delivery/dsn"
	"gomta/delivery/mailbox"
	"gomta/delivery/relay"
	"gomta/queue"
	"gomta/session/address"
	"gomta/session/metrics"
	"gomta/session/reply"
)

// Mailboxes is the local store as delivery needs it (delivery/mailbox.Store),
// which logs each delivery.
type Mailboxes interface {
	Deliver(ctx context.Context, d mailbox.Delivery) error
}

// Relayer sends one message to every recipient of one remote domain and says
// which mail exchanger answered (delivery/relay.Relay).
type Relayer interface {
	Deliver(ctx context.Context, j relay.Job) relay.Outcome
}

// Worker delivers the messages of one mail host. It is safe for concurrent use.
type Worker struct {
	Host string // mail host name, Reporting-MTA of bounces
	// MailDomain is the host's mail domain: bounces and delay notices come
	// From: MAILER-DAEMON@MailDomain ("": Host).
	MailDomain string
	// Local tells whether a domain is a final destination of this host, and
	// Account maps an address to the canonical account name (ok=false when
	// there is no such account).
	Local     func(domain string) bool
	Account   func(addr string) (string, bool)
	Mailboxes Mailboxes
	Relay     Relayer
	// MaxRelay bounds the relay transactions in progress at once for this
	// host, across all attempts (0: DefaultMaxRelay).
	MaxRelay int
	Logger   *zap.Logger
	// Metrics counts each recipient's result by kind (local, relay) and
	// the delivery latency from acceptance; nil = not counted.
	Metrics *metrics.Delivery

	semOnce sync.Once
	sem     chan struct{} // relay slots
}

// DefaultMaxRelay is the default bound on a host's concurrent relay
// transactions (outbound SMTP connections).
const DefaultMaxRelay = 100

// errNoMailbox is the permanent failure for a local recipient whose account
// disappeared between acceptance and delivery.
var errNoMailbox = &reply.Reply{Code: reply.CodeRejected, Enhanced: reply.EnhNoSuchUser, Text: "mailbox unavailable"}

// Deliver implements queue.Handler.
func (w *Worker) Deliver(ctx context.Context, m *queue.Message) []queue.Result {
	log := w.Logger.With(zap.String("msg_id", m.ID), zap.Int("attempt", m.Attempt))
	outs := make(map[string]rcptOutcome, len(m.Rcpts))
	var mu sync.Mutex
	set := func(rcpt string, o rcptOutcome) { mu.Lock(); outs[rcpt] = o; mu.Unlock() }

	var wg sync.WaitGroup
	loopChecked, looped := false, error(nil)
	for domain, rcpts := range splitByDomain(m.Rcpts) {
		if w.Local(domain) {
			for _, r := range rcpts {
				set(r, rcptOutcome{err: w.deliverLocal(ctx, log, m, r), notice: noticeDelivered})
			}
			continue
		}
		if !loopChecked {
			loopChecked, looped = true, checkLoop(m)
		}
		if looped != nil {
			for _, r := range rcpts {
				set(r, rcptOutcome{err: looped})
			}
			continue
		}
		if err := w.acquire(ctx); err != nil {
			for _, r := range rcpts {
				set(r, rcptOutcome{err: err})
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.release()
			defer func() {
				if p := recover(); p != nil {
					log.Error("relay panic", zap.String("domain", domain), zap.Any("panic", p), zap.Stack("stack"))
					for _, r := range rcpts {
						set(r, rcptOutcome{err: fmt.Errorf("relay: panic: %v", p)})
					}
				}
			}()
			out := w.Relay.Deliver(ctx, relay.Job{MsgID: m.ID, Domain: domain, From: m.From, Rcpts: rcpts, Open: m.Open,
				Attempt: m.Attempt, Final: m.Final, DSN: relayDSN(m.DSN)})
			for i, r := range rcpts {
				o := rcptOutcome{err: errors.New("relay: no result"), mx: out.MX, notice: relayNotice(out)}
				if i < len(out.Errs) {
					o.err = out.Errs[i]
				}
				set(r, o)
			}
		}()
	}
	wg.Wait()
	return w.results(ctx, m, outs)
}

// rcptOutcome is what one attempt did for one recipient: err nil when
// delivered; mx the mail exchanger that answered; notice the Action of a
// success notice if the recipient asked for one (queue.Result.Notice).
type rcptOutcome struct {
	err    error
	mx     string
	notice string
}

// results turns the outcomes into one queue.Result per recipient of m, in
// order, and counts them.
func (w *Worker) results(ctx context.Context, m *queue.Message, outs map[string]rcptOutcome) []queue.Result {
	results := make([]queue.Result, 0, len(m.Rcpts))
	for _, r := range m.Rcpts {
		o := outs[r]
		res := queue.Result{Rcpt: r}
		if o.err == nil {
			res.Notice, res.Failure.Remote = o.notice, o.mx
		} else {
			f := relay.Failure(r, o.mx, o.err)
			res = queue.Result{Rcpt: r, Err: o.err, Permanent: !reply.Temporary(o.err),
				Failure: queue.Failure{Rcpt: r, Code: f.Code, Enhanced: f.Enhanced, Text: f.Text, Remote: f.RemoteMTA}}
		}
		results = append(results, res)
		w.count(ctx, m, res)
	}
	return results
}

// count counts one recipient's result as the queue will take it: a failure
// is bounced when permanent, or on the final attempt unless a stop cut
// that attempt short (the queue then makes it again).
func (w *Worker) count(ctx context.Context, m *queue.Message, r queue.Result) {
	if w.Metrics == nil {
		return
	}
	kind := metrics.KindRelay
	if w.Local(address.Domain(r.Rcpt)) {
		kind = metrics.KindLocal
	}
	result := metrics.ResultDelivered
	switch {
	case r.Err == nil:
	case r.Permanent || m.Final && ctx.Err() == nil:
		result = metrics.ResultBounced
	default:
		result = metrics.ResultDeferred
	}
	w.Metrics.Result(kind, result, time.Since(m.Received))
}

// acquire takes a relay slot, waiting while MaxRelay transactions are in
// progress; the error (temporary) is the context's.
func (w *Worker) acquire(ctx context.Context) error {
	w.semOnce.Do(func() {
		n := w.MaxRelay
		if n <= 0 {
			n = DefaultMaxRelay
		}
		w.sem = make(chan struct{}, n)
	})
	select {
	case w.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("relay: waiting for a relay slot: %w", ctx.Err())
	}
}

func (w *Worker) release() { <-w.sem }

func (w *Worker) deliverLocal(ctx context.Context, log *zap.Logger, m *queue.Message, rcpt string) error {
	user, ok := w.Account(rcpt)
	if !ok {
		return errNoMailbox
	}
	// A body that starts with trace fields (written at DATA for its only
	// recipient) is linked into that mailbox, or has them skipped for another.
	d := mailbox.Delivery{User: user, Rcpt: rcpt, From: m.From, MsgID: m.ID, BodyPath: m.BodyPath, Size: m.Size,
		TraceLen: m.Trace.Len, TraceTo: m.Trace.To}
	if err := w.Mailboxes.Deliver(ctx, d); err != nil {
		log.Warn("local delivery failed", zap.String("rcpt", rcpt), zap.Error(err))
		return fmt.Errorf("mailbox %s: %w", user, err) // temporary: disk, shutdown
	}
	return nil
}

// WriteBounce implements queue.Handler: the RFC 3464 report to m.From about
// the failed recipients of m, with the original's header section. An
// original that cannot be read any more still gets its bounce, without the
// headers: the sender must hear of the failure.
func (w *Worker) WriteBounce(out io.Writer, m *queue.Message, failed []queue.Failure) error {
	return w.writeReport(out, m, failed, false)
}

// WriteDelay implements queue.Handler: the RFC 3464 delay notice (Action:
// delayed) to m.From about the recipients still pending, with their last
// failure and how long they are retried.
func (w *Worker) WriteDelay(out io.Writer, m *queue.Message, pending []queue.Failure) error {
	return w.writeReport(out, m, pending, true)
}

// WriteSuccess implements queue.Handler: the success notice (RFC 3461
// §6.2) to m.From about recipients delivered here or relayed to a next hop
// without DSN.
func (w *Worker) WriteSuccess(out io.Writer, m *queue.Message, done []queue.Failure) error {
	return w.writeReport(out, m, done, false)
}

func (w *Worker) writeReport(out io.Writer, m *queue.Message, failed []queue.Failure, delayed bool) error {
	var orig io.Reader
	if body, err := m.Open(); err != nil {
		w.Logger.Warn("report without the original's headers", zap.String("msg_id", m.ID), zap.Error(err))
	} else {
		defer body.Close()
		orig = body
	}
	fs := make([]dsn.Failure, len(failed))
	success := false
	for i, f := range failed {
		fs[i] = dsn.Failure{Rcpt: f.Rcpt, Code: f.Code, Enhanced: f.Enhanced, Text: f.Text, RemoteMTA: f.Remote, Status: f.Status,
			ORCPT: m.DSN.Rcpt[f.Rcpt].ORCPT, Relayed: f.Action == noticeRelayed}
		success = success || f.Action != ""
	}
	err := dsn.Write(out, dsn.Report{
		ReportingMTA: w.Host, MailDomain: w.MailDomain, From: m.From, MsgID: m.ID, Arrival: m.Received,
		Failures: fs, Original: orig, Delayed: delayed, RetryUntil: m.Expires,
		Success: success, EnvID: m.DSN.EnvID, Full: m.DSN.Ret == "FULL",
	})
	if err != nil {
		return fmt.Errorf("write DSN: %w", err)
	}
	return nil
}

// splitByDomain groups recipients by folded domain (address.Domain),
// keeping their order.
func splitByDomain(rcpts []string) map[string][]string {
	out := make(map[string][]string)
	for _, r := range rcpts {
		d := address.Domain(r)
		out[d] = append(out[d], r)
	}
	return out
}
