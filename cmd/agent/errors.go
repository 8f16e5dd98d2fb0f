package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"gomta/session/pop3client"
	"gomta/session/reply"
)

// connError is a failure to reach or keep talking to a server (exit 2).
type connError struct {
	what string // "the SMTP server smtp.gmail.com (127.0.0.1:2025)"
	err  error
}

func (e *connError) Error() string { return e.what + ": " + describeNetErr(e.err) }
func (e *connError) Unwrap() error { return e.err }

// stepError says which step a server refused ("login as a@b failed").
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + sentence(e.err) }
func (e *stepError) Unwrap() error { return e.err }

// refused reports whether err is a server's negative reply.
func refused(err error) bool {
	var r *reply.Reply
	var p *pop3client.Error
	return errors.As(err, &r) || errors.As(err, &p)
}

// exitStatus maps an error to the agent's exit status.
func exitStatus(err error) int {
	switch {
	case err == nil:
		return exitOK
	case refused(err):
		return exitRefused
	default:
		return exitUsage
	}
}

// sentence renders an error for a person: a server's own words for a
// negative reply, a plain cause for network trouble, never a Go repr.
func sentence(err error) string {
	var r *reply.Reply
	var p *pop3client.Error
	var ce *connError
	var se *stepError
	var cert *certError
	switch {
	case errors.As(err, &cert):
		return cert.Error()
	case errors.As(err, &se):
		return se.Error()
	case errors.As(err, &ce):
		return ce.Error()
	case errors.As(err, &r):
		return "the server said: " + r.Error()
	case errors.As(err, &p):
		return "the server said: " + p.Text
	}
	return oneLine(err.Error())
}

// serverWords is the text of a negative reply as the server wrote it.
func serverWords(err error) string {
	var r *reply.Reply
	var p *pop3client.Error
	switch {
	case errors.As(err, &r):
		return r.Error()
	case errors.As(err, &p):
		return "-ERR " + p.Text
	}
	return describeNetErr(err)
}

// describeNetErr turns a network error into its cause, without Go's
// "dial tcp 127.0.0.1:1025: connect:" prefixes.
func describeNetErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is mtad running?)"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "the server closed the connection"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot resolve %s", dnsErr.Name)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return innermost(op.Err)
	}
	return oneLine(err.Error())
}

func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return strings.TrimSpace(err.Error())
		}
		err = u
	}
}
