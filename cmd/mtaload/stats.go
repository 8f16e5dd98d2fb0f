package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"gomta/session/pop3client"
	"gomta/session/reply"
)

// stepHist is the histogram of one named step ("connect", "mail", "RETR", ...).
type stepHist struct {
	name string
	h    hist
}

// errGroup counts one kind of error and keeps the first text seen.
type errGroup struct {
	n      int64
	sample string
}

// stats is what one worker measured. It is written only by its worker
// goroutine; done is the one field read concurrently (by the progress
// ticker), hence atomic, like failed. Workers' stats are merged after they have all ended.
type stats struct {
	done   atomic.Int64 // units finished (messages, sessions), for progress
	failed atomic.Int64 // units that failed, for progress

	steps []stepHist // in first-seen order; few, so a linear scan beats a map

	sessions      int64 // connections that got a greeting
	sessionsFail  int64 // connections refused, or greeting not positive
	okUnits       int64 // messages accepted (SMTP) / sessions completed (POP3)
	failUnits     int64 // messages / sessions that failed as a whole
	rcptOK        int64
	rcptFail      int64
	retrieved     int64 // POP3: messages retrieved
	bytes         int64 // octets of accepted messages / retrieved messages
	partialUnits  int64 // SMTP: accepted, but some recipient refused
	errs          map[string]*errGroup
	pipelineNoted bool // -pipelining asked but the server did not offer it
}

// trace is the clients' Options.Trace hook: one histogram per step name.
func (s *stats) trace(step string, d time.Duration) {
	s.step(step).record(d)
}

// step returns the histogram of a step, creating it on first use.
func (s *stats) step(name string) *hist {
	for i := range s.steps {
		if s.steps[i].name == name {
			return &s.steps[i].h
		}
	}
	s.steps = append(s.steps, stepHist{name: name})
	return &s.steps[len(s.steps)-1].h
}

// addErr counts an error under its group key.
func (s *stats) addErr(err error) {
	key, text := classify(err)
	if s.errs == nil {
		s.errs = make(map[string]*errGroup)
	}
	g := s.errs[key]
	if g == nil {
		g = &errGroup{sample: text}
		s.errs[key] = g
	}
	g.n++
}

// merge adds o into s.
func (s *stats) merge(o *stats) {
	for i := range o.steps {
		s.step(o.steps[i].name).merge(&o.steps[i].h)
	}
	s.sessions += o.sessions
	s.sessionsFail += o.sessionsFail
	s.okUnits += o.okUnits
	s.failUnits += o.failUnits
	s.rcptOK += o.rcptOK
	s.rcptFail += o.rcptFail
	s.retrieved += o.retrieved
	s.bytes += o.bytes
	s.partialUnits += o.partialUnits
	s.pipelineNoted = s.pipelineNoted || o.pipelineNoted
	for k, g := range o.errs {
		if s.errs == nil {
			s.errs = make(map[string]*errGroup)
		}
		if m := s.errs[k]; m != nil {
			m.n += g.n
		} else {
			s.errs[k] = &errGroup{n: g.n, sample: g.sample}
		}
	}
}

// classify groups an error: an SMTP reply by its code ("550"), a POP3 -ERR
// by its RFC 2449 response code ("-ERR [IN-USE]") or "-ERR", and transport
// problems by kind ("timeout", "refused", "reset", "eof", "net").
func classify(err error) (key, text string) {
	text = err.Error()
	var r *reply.Reply
	if errors.As(err, &r) {
		return strconv.Itoa(r.Code), r.Error()
	}
	var pe *pop3client.Error
	if errors.As(err, &pe) {
		if c := pe.Code(); c != "" {
			return "-ERR [" + c + "]", text
		}
		return "-ERR", text
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout", text
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", text
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset", text
	case errors.Is(err, context.Canceled):
		return "canceled", text
	case errors.Is(err, net.ErrClosed):
		return "closed", text
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof", text
	}
	return "other", text
}
