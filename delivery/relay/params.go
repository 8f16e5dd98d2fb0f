package relay

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"gomta/delivery/relay/downgrade"
	"gomta/session/reply"
	"gomta/session/smtpclient"
)

// enhConversion is RFC 3463 §3.7 X.6.3: conversion required but not
// supported (an 8-bit message that cannot be made 7-bit for a hop without
// 8BITMIME).
const enhConversion = "5.6.3"

// convertedQP is the value of the converted log field for a message
// re-encoded for a hop without 8BITMIME.
const convertedQP = "8bit-to-qp"

// errTooBigForHop is the permanent failure of a message larger than the
// next hop's SIZE limit (RFC 1870 §6: the client should not send it).
func errTooBigForHop(size, limit int64) error {
	return &reply.Reply{Code: reply.CodeTooBig, Enhanced: reply.EnhTooBig,
		Text: fmt.Sprintf("message size %d exceeds size limit %d of the next hop", size, limit)}
}

// errCannotConvert is the permanent failure of an 8-bit message that
// cannot be made 7-bit (RFC 6152 §3).
func errCannotConvert(why error) error {
	return &reply.Reply{Code: reply.CodeTxFailed, Enhanced: enhConversion,
		Text: "conversion required but not supported: " + why.Error()}
}

// bodyInfo is what a pass over the body tells before MAIL.
type bodyInfo struct {
	size     int64
	eightBit bool // some octet is over 127
}

// scan reads r through.
func scan(r io.Reader) (bodyInfo, error) {
	var info bodyInfo
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		info.size += int64(n)
		for _, b := range buf[:n] {
			if b > 127 {
				info.eightBit = true
				break
			}
		}
		if errors.Is(err, io.EOF) {
			return info, nil
		}
		if err != nil {
			return info, err
		}
	}
}

// rewind makes body readable from the start again: by seeking a spool
// file, else by opening it again (body is closed then).
func rewind(j Job, body io.ReadCloser) (io.ReadCloser, error) {
	if s, ok := body.(io.Seeker); ok {
		_, err := s.Seek(0, io.SeekStart)
		return body, err
	}
	_ = body.Close()
	return j.Open()
}

// prepare decides how j's message goes to the hop c greeted: SIZE= (RFC
// 1870, the original size) and BODY=8BITMIME (RFC 6152) on MAIL when
// offered, a refusal (5.3.4) when the hop's SIZE limit is smaller than the
// message, and for an 8-bit message to a hop without 8BITMIME a conversion
// to 7-bit, checked whole before anything is sent (5.6.3 when it cannot be
// done). It takes body and returns the reader to send, which the caller
// closes; converted is the log field's value, "" when sent as it is. A
// *reply.Reply error is the recipients' permanent result; any other error
// is a local failure to read the body.
func prepare(c *smtpclient.Client, j Job, body io.ReadCloser) (env smtpclient.Envelope, send io.ReadCloser, converted string, err error) {
	env = smtpclient.Envelope{From: j.From, Rcpts: j.Rcpts}
	info, err := scan(body)
	if err == nil {
		body, err = rewind(j, body)
	}
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return env, nil, "", fmt.Errorf("relay: read message: %w", err)
	}
	if ok, p := c.Extension("SIZE"); ok {
		// RFC 1870 §4: a limit of 0 (or none given) is no fixed limit.
		if limit, perr := strconv.ParseInt(p, 10, 64); perr == nil && limit > 0 && info.size > limit {
			_ = body.Close()
			return env, nil, "", errTooBigForHop(info.size, limit)
		}
		env.MailParams = append(env.MailParams, "SIZE="+strconv.FormatInt(info.size, 10))
	}
	if !info.eightBit {
		return env, body, "", nil
	}
	if ok, _ := c.Extension("8BITMIME"); ok {
		env.MailParams = append(env.MailParams, "BODY=8BITMIME")
		return env, body, "", nil
	}
	send, err = convert(j, body)
	if err != nil {
		return env, nil, "", err
	}
	return env, send, convertedQP, nil
}

// convert checks that body converts (into io.Discard), then returns a
// reader of the converted message, produced as it is read.
func convert(j Job, body io.ReadCloser) (io.ReadCloser, error) {
	_, err := downgrade.Convert(io.Discard, body)
	if err == nil {
		body, err = rewind(j, body)
	}
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		if errors.Is(err, downgrade.ErrNotConvertible) {
			return nil, errCannotConvert(err)
		}
		return nil, fmt.Errorf("relay: read message: %w", err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				pw.CloseWithError(fmt.Errorf("relay: conversion: %v", p))
			}
		}()
		_, err := downgrade.Convert(pw, body)
		pw.CloseWithError(err)
	}()
	return &converting{PipeReader: pr, body: body, done: done}, nil
}

// converting is the read side of a conversion in progress.
type converting struct {
	*io.PipeReader
	body io.Closer
	done chan struct{}
}

// Close stops the conversion (a reader that stopped early unblocks it) and
// closes the body.
func (cv *converting) Close() error {
	_ = cv.PipeReader.Close()
	<-cv.done
	return cv.body.Close()
}
