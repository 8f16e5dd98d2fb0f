// Package delivery owns what happens to a spooled message: a Worker (the queue's
// Handler) splits its recipients by domain once, hands local recipients to their
// mailbox actors (delivery/mailbox) and other domains to the relay worker
// (delivery/relay), reports one result per recipient, and turns permanent
// failures into RFC 3464 bounces (delivery/dsn) queued back to the sender.
// Temporary versus permanent is a property of the error (relay.Temporary).
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"gomta/delivery/dsn"
	"gomta/delivery/relay"
	"gomta/queue"
	"gomta/session/smtp"
)

// Mailboxes is the local store as delivery needs it (delivery/mailbox.Store).
type Mailboxes interface {
	Deliver(ctx context.Context, user, bodyPath string) error
}

// Relayer sends one message to every recipient of one remote domain and says
// which mail exchanger answered (delivery/relay.Relay).
type Relayer interface {
	Deliver(ctx context.Context, msgID, domain, from string, rcpts []string, open func() (io.ReadCloser, error)) relay.Outcome
}

// Submitter queues a new message; used for bounces (queue.Queue).
type Submitter interface {
	Submit(ctx context.Context, from string, rcpts []string, body io.Reader) (string, error)
}

// Worker delivers the messages of one mail host. It is safe for concurrent use.
type Worker struct {
	Host string // mail host name, Reporting-MTA of bounces
	// Local tells whether a domain is a final destination of this host, and
	// Account maps an address to the canonical account name (ok=false when
	// there is no such account).
	Local     func(domain string) bool
	Account   func(addr string) (string, bool)
	Mailboxes Mailboxes
	Relay     Relayer
	Bounces   Submitter
	Logger    *zap.Logger
}

// errNoMailbox is the permanent failure for a local recipient whose account
// disappeared between acceptance and delivery.
var errNoMailbox = &smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "mailbox unavailable"} // RFC 3463 §3.2 X.1.1

// Deliver implements queue.Handler.
func (w *Worker) Deliver(ctx context.Context, m *queue.Message) []queue.Result {
	log := w.Logger.With(zap.String("msg_id", m.ID), zap.Int("attempt", m.Attempt))
	errs := make(map[string]error, len(m.Rcpts))
	mxs := make(map[string]string)
	var mu sync.Mutex
	set := func(rcpt, mx string, err error) { mu.Lock(); errs[rcpt], mxs[rcpt] = err, mx; mu.Unlock() }

	var wg sync.WaitGroup
	for domain, rcpts := range splitByDomain(m.Rcpts) {
		if w.Local(domain) {
			for _, r := range rcpts {
				set(r, "", w.deliverLocal(ctx, log, m, r))
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					log.Error("relay panic", zap.String("domain", domain), zap.Any("panic", p), zap.Stack("stack"))
					for _, r := range rcpts {
						set(r, "", fmt.Errorf("relay: panic: %v", p))
					}
				}
			}()
			out := w.Relay.Deliver(ctx, m.ID, domain, m.From, rcpts, m.Open)
			for i, r := range rcpts {
				err := errors.New("relay: no result")
				if i < len(out.Errs) {
					err = out.Errs[i]
				}
				set(r, out.MX, err)
			}
		}()
	}
	wg.Wait()

	results := make([]queue.Result, 0, len(m.Rcpts))
	var failed []dsn.Failure
	for _, r := range m.Rcpts {
		err := errs[r]
		if err == nil {
			results = append(results, queue.Result{Rcpt: r})
			continue
		}
		if relay.Temporary(err) && !m.Final {
			results = append(results, queue.Result{Rcpt: r, Err: err})
			continue
		}
		failed = append(failed, relay.Failure(r, mxs[r], err))
		results = append(results, queue.Result{Rcpt: r}) // done once the bounce is queued
	}
	if len(failed) > 0 {
		if err := w.bounce(ctx, log, m, failed); err != nil {
			// Keep the failed recipients: they are retried, and bounced then.
			log.Error("bounce not queued", zap.Error(err))
			for i := range results {
				if slices.ContainsFunc(failed, func(f dsn.Failure) bool { return f.Rcpt == results[i].Rcpt }) {
					results[i].Err = err
				}
			}
		}
	}
	return results
}

func (w *Worker) deliverLocal(ctx context.Context, log *zap.Logger, m *queue.Message, rcpt string) error {
	user, ok := w.Account(rcpt)
	if !ok {
		return errNoMailbox
	}
	start := time.Now()
	if err := w.Mailboxes.Deliver(ctx, user, m.BodyPath); err != nil {
		log.Warn("local delivery failed", zap.String("rcpt", rcpt), zap.Error(err))
		return fmt.Errorf("mailbox %s: %w", user, err) // temporary: disk, shutdown
	}
	log.Info("delivered", zap.String("rcpt", rcpt), zap.String("mail_from", m.From),
		zap.Int64("bytes", m.Size), zap.Int64("duration_ms", time.Since(start).Milliseconds()))
	return nil
}

// bounce queues one DSN for every failed recipient of m. A message from the
// null sender is never bounced (DESIGN.md contract 3): the failure is logged.
func (w *Worker) bounce(ctx context.Context, log *zap.Logger, m *queue.Message, failed []dsn.Failure) error {
	for _, f := range failed {
		log.Info("recipient failed permanently", zap.String("rcpt", f.Rcpt), zap.Int("smtp_code", f.Code),
			zap.String("enhanced", f.Enhanced), zap.String("error", f.Text))
	}
	if m.From == "" {
		log.Warn("bounce not sent for a message from the null sender", zap.Int("rcpts", len(failed)))
		return nil
	}
	body, err := m.Open()
	if err != nil {
		return fmt.Errorf("open original: %w", err)
	}
	defer body.Close()
	var buf bytes.Buffer
	err = dsn.Write(&buf, dsn.Report{
		ReportingMTA: w.Host, From: m.From, MsgID: m.ID, Arrival: m.Received,
		Failures: failed, Original: body,
	})
	if err != nil {
		return fmt.Errorf("write DSN: %w", err)
	}
	id, err := w.Bounces.Submit(ctx, "", []string{m.From}, &buf)
	if err != nil {
		return fmt.Errorf("queue DSN: %w", err)
	}
	log.Info("bounce queued", zap.String("rcpt", m.From), zap.String("bounce_msg_id", id))
	return nil
}

// splitByDomain groups recipients by lower-cased domain, keeping their order.
func splitByDomain(rcpts []string) map[string][]string {
	out := make(map[string][]string)
	for _, r := range rcpts {
		d := ""
		if at := strings.LastIndexByte(r, '@'); at >= 0 {
			d = strings.ToLower(r[at+1:])
		}
		out[d] = append(out[d], r)
	}
	return out
}
