package smtpclient

import (
	"errors"
	"fmt"
	"io"
	"time"

	"gomta/session/reply"
)

// ErrNoRecipients is wrapped by Send's error when no recipient was accepted;
// the last refusal is wrapped too, so errors.As finds its *reply.Reply.
var ErrNoRecipients = errors.New("smtpclient: no recipient accepted")

// pipelineWindow bounds how many RCPT commands are written before their
// replies are read. RFC 2920 §3.1 warns that a client which never reads can
// deadlock against a server whose replies fill the socket buffers.
const pipelineWindow = 100

// Send does one whole transaction: MAIL, every RCPT, DATA, or BDAT chunks
// (RFC 3030) for a large body to a server that offers CHUNKING (useBdat).
// With PIPELINING offered, the commands are pipelined (RFC 2920). rcptErrs has one entry per
// recipient (nil = accepted). err is set when the transaction as a whole failed
// (MAIL refused, no recipient accepted, DATA refused, connection lost).
//
// When err is set, every rcptErrs entry that would otherwise be nil is set to
// err, so rcptErrs alone tells the fate of each recipient: nil means the
// server took responsibility for the message for that recipient. After a
// refused transaction on a live connection RSET is sent, so the client can
// start another.
func (c *Client) Send(from string, rcpts []string, body io.Reader) (rcptErrs []error, err error) {
	return c.SendEnvelope(Envelope{From: from, Rcpts: rcpts}, body)
}

// Envelope is one transaction's envelope: the reverse-path with the ESMTP
// parameters of MAIL FROM, and the recipients with those of each RCPT TO.
// The caller offers a parameter only when the server advertised its
// extension (Extension).
type Envelope struct {
	From       string
	MailParams []string   // e.g. "SIZE=1234", "BODY=8BITMIME", "SMTPUTF8", "RET=HDRS"
	Rcpts      []string   // forward-paths
	RcptParams [][]string // per recipient, parallel to Rcpts (nil or short: none), e.g. "NOTIFY=SUCCESS"
}

// rcptParams returns the parameters of recipient i.
func (e *Envelope) rcptParams(i int) []string {
	if i < len(e.RcptParams) {
		return e.RcptParams[i]
	}
	return nil
}

// SendEnvelope is Send with ESMTP parameters on MAIL and RCPT.
func (c *Client) SendEnvelope(env Envelope, body io.Reader) (rcptErrs []error, err error) {
	from, rcpts := env.From, env.Rcpts
	rcptErrs = make([]error, len(rcpts))
	defer func() {
		if err != nil {
			for i := range rcptErrs {
				if rcptErrs[i] == nil {
					rcptErrs[i] = err
				}
			}
		}
	}()
	if len(rcpts) == 0 {
		return rcptErrs, ErrNoRecipients
	}
	if err := c.ensureHello(); err != nil {
		return rcptErrs, err
	}
	if err := checkPath(from, reply.EnhBadFromSyntax); err != nil {
		return rcptErrs, err
	}
	if err := checkParams(env.MailParams, reply.EnhBadFromSyntax); err != nil {
		return rcptErrs, err
	}
	valid := 0
	var last error
	for i, to := range rcpts {
		if rcptErrs[i] = checkRcpt(to); rcptErrs[i] == nil {
			rcptErrs[i] = checkParams(env.rcptParams(i), reply.EnhBadRcptSyntax)
		}
		if rcptErrs[i] == nil {
			valid++
		} else {
			last = rcptErrs[i]
		}
	}
	if valid == 0 {
		return rcptErrs, fmt.Errorf("%w: %w", ErrNoRecipients, last)
	}
	if c.pipelining {
		return rcptErrs, c.sendPipelined(&env, rcptErrs, body)
	}
	return rcptErrs, c.sendStepwise(&env, rcptErrs, body)
}

// sendStepwise waits for each reply before the next command.
func (c *Client) sendStepwise(env *Envelope, rcptErrs []error, body io.Reader) error {
	if err := c.Mail(env.From, env.MailParams...); err != nil {
		return err
	}
	ok := 0
	var last error
	for i, to := range env.Rcpts {
		if rcptErrs[i] != nil {
			continue
		}
		if err := c.Rcpt(to, env.rcptParams(i)...); err != nil {
			if err := c.usable(); err != nil {
				return err
			}
			rcptErrs[i], last = err, err
			continue
		}
		ok++
	}
	if ok == 0 {
		c.resetQuietly()
		return fmt.Errorf("%w: %w", ErrNoRecipients, last)
	}
	if c.useBdat(body) {
		return c.bdatBody(body)
	}
	_, err := c.Data(body)
	if err != nil && c.usable() == nil && c.rb.code != reply.CodeStartInput {
		c.resetQuietly()
	}
	return err
}

// sendPipelined writes MAIL, the RCPTs and DATA in batches of at most
// pipelineWindow commands and then reads their replies in order (RFC 2920
// §3.1: DATA is the last command of a group). A body that goes in BDAT
// chunks is sent only once a recipient was accepted, so that no chunk is
// sent for nothing.
func (c *Client) sendPipelined(env *Envelope, rcptErrs []error, body io.Reader) error {
	if err := c.usable(); err != nil {
		return err
	}
	rcpts := env.Rcpts
	var mailErr, last error
	ok := 0
	bdat := c.useBdat(body)
	c.writeMail(env.From, env.MailParams)
	for s := 0; s < len(rcpts); s += pipelineWindow {
		e := min(s+pipelineWindow, len(rcpts))
		for i := s; i < e; i++ {
			if rcptErrs[i] == nil {
				c.writeRcpt(rcpts[i], env.rcptParams(i))
			}
		}
		final := e == len(rcpts)
		if final && !bdat {
			c.cmd("DATA", "", "")
		}
		start := time.Now()
		c.deadline()
		if err := c.w.Flush(); err != nil {
			return c.fail(err)
		}
		if s == 0 {
			if err := c.read(); err != nil {
				return err
			}
			c.opt.trace("mail", start)
			start = time.Now()
			mailErr = c.expect(2)
		}
		for i := s; i < e; i++ {
			if rcptErrs[i] != nil {
				continue
			}
			if err := c.read(); err != nil {
				return err
			}
			c.opt.trace("rcpt", start)
			start = time.Now()
			if mailErr != nil {
				continue // the RCPTs were refused because MAIL was; report MAIL's reply
			}
			if err := c.expect(2); err != nil {
				rcptErrs[i], last = err, err
				continue
			}
			ok++
		}
		if !final || bdat {
			continue
		}
		if err := c.read(); err != nil {
			return err
		}
		c.opt.trace("data", start)
	}
	if mailErr == nil && ok == 0 {
		mailErr = fmt.Errorf("%w: %w", ErrNoRecipients, last)
	}
	if bdat {
		return c.finishBdat(mailErr, body)
	}
	return c.finishPipelined(mailErr, body)
}

// finishPipelined acts on the reply to a pipelined DATA: with refused, the
// transaction's failure (MAIL refused or no recipient accepted), an empty
// message ends a DATA the server took anyway and RSET follows; otherwise a
// 354 is answered with the body and a refused DATA with RSET.
func (c *Client) finishPipelined(refused error, body io.Reader) error {
	if err := c.usable(); err != nil { // a 421 somewhere on the way
		return err
	}
	got354 := c.rb.code == reply.CodeStartInput
	switch {
	case refused != nil:
		if got354 {
			// The server took DATA although nothing is deliverable
			// (RFC 2920 §3.1 lets it): end the empty message.
			c.cmd(".", "", "")
			if err := c.flushAndRead(); err != nil {
				return err
			}
		}
		c.resetQuietly()
		return refused
	case !got354:
		err := c.negative()
		c.resetQuietly()
		return err
	}
	return c.dataBody(body)
}

// finishBdat sends the body in BDAT chunks after pipelined MAIL and RCPTs,
// unless the transaction already failed (refused): then RSET.
func (c *Client) finishBdat(refused error, body io.Reader) error {
	if err := c.usable(); err != nil { // a 421 somewhere on the way
		return err
	}
	if refused != nil {
		c.resetQuietly()
		return refused
	}
	return c.bdatBody(body)
}

// resetQuietly sends RSET on a live connection after a failed transaction;
// its own failure shows up on the next command.
func (c *Client) resetQuietly() {
	if c.usable() == nil {
		_ = c.Reset()
	}
}
