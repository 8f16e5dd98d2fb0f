package smtp

import (
	"io"
	"math"
	"time"

	"go.uber.org/zap"

	"gomta/session/logvocab"
)

// data runs the DATA phase (RFC 5321 §4.1.1.4): it opens a MessageWriter,
// answers 354, streams the Received header and the body into it through one
// fixed buffer, and answers 250 only once Commit returned nil. The message is
// aborted on any refusal or error. The transaction ends whatever the outcome.
func (s *session) data(arg string) (*Reply, error) {
	if arg != "" {
		return replyNoArgs, nil
	}
	defer s.resetTx()
	start := time.Now()
	mw, err := s.srv.be.NewMessage(s.ctx, &s.conn)
	if err != nil {
		return s.backendReply(err, zap.String("mail_from", s.from)), nil
	}
	committed := false
	defer func() {
		if !committed {
			mw.Abort()
		}
	}()
	id := mw.ID()
	s.reply(replyStartData)
	s.inData = true
	if err := s.flush(); err != nil {
		return nil, err
	}
	s.nc.SetReadDeadline(s.deadline(s.cfg.DataTimeout))

	buf := s.srv.chunks.Get().(*[chunkSize]byte)
	defer s.srv.chunks.Put(buf)
	cw := &chunkWriter{w: mw, buf: buf[:0]}
	hdr := s.receivedHeader(id, start)
	dr := &dataReader{br: s.br, max: bodyLimit(s.cfg.MaxSize), sink: cw, maxHops: s.cfg.MaxReceived}
	// The Received field prepended here counts, as Postfix's cleanup counts
	// the one its smtpd adds: the message as queued has at most MaxReceived.
	dr.hops.N = 1
	pre, err := writeTrace(mw, s.from, s.rcpts)
	if err == nil {
		_, err = io.WriteString(cw, hdr)
	}
	if err != nil {
		dr.faults, dr.werr = faultWrite, err
	}
	if err := dr.read(); err != nil {
		return nil, err
	}
	if err := cw.Flush(); err != nil && dr.faults == 0 {
		dr.faults, dr.werr = faultWrite, err
	}
	if r := s.refusal(dr, id); r != nil {
		return r, nil // logged as a refusal by the session loop
	}
	r, ok := s.commit(mw, dr, pre+len(hdr), start)
	committed = ok
	return r, nil
}

// refusal is the reply that refuses a message for the faults its reader
// found, nil when there are none.
func (s *session) refusal(dr *dataReader, id string) *Reply {
	if r := dr.faults.reply(); r != nil {
		if r == replyLoop {
			s.log.Warn("mail loop detected", zap.String("msg_id", id), zap.Int("count", dr.hops.N))
		}
		return r
	}
	if dr.faults&faultWrite != 0 {
		return s.backendReply(dr.werr, zap.String("msg_id", id))
	}
	return nil
}

// commit makes a message read whole and without fault durable and logs its
// acceptance; the reply is 250 only when it is (contract: 250 means
// durable). hdrLen is the size of the fields (trace, Received) put before
// the body.
func (s *session) commit(mw MessageWriter, dr *dataReader, hdrLen int, start time.Time) (*Reply, bool) {
	id := mw.ID()
	s.dsn.handOver(mw)
	if err := mw.Commit(s.ctx, s.from, s.rcpts); err != nil {
		return s.backendReply(err, zap.String("msg_id", id)), false
	}
	size := dr.n + int64(hdrLen)
	s.cfg.Metrics.Accepted(size)
	s.logAccepted(mw, id, size, &dr.trace, start)
	return replyQueued(id), true
}

// logAccepted writes the acceptance line: the line a message is followed
// from, across hosts (upstream_msg_id, the previous hop's id as its
// Received field claims it) and by the Message-ID its author gave it.
func (s *session) logAccepted(mw MessageWriter, id string, size int64, tr *traceScan, start time.Time) {
	rcpts := s.rcpts
	if q, ok := mw.(QueuedRcpts); ok {
		rcpts = q.QueuedRcpts()
	}
	fields := []zap.Field{zap.String("msg_id", id), zap.String("mail_from", s.from),
		zap.Strings(logvocab.Rcpt, rcpts), zap.Int64("bytes", size), zap.Bool("tls", s.conn.TLS)}
	if mid := tr.MessageID(); mid != "" {
		fields = append(fields, zap.String("message_id", mid))
	}
	if s.conn.AuthUser != "" {
		fields = append(fields, zap.String("auth_user", s.conn.AuthUser))
	}
	if up := tr.UpstreamID(); up != "" {
		fields = append(fields, zap.String("upstream_msg_id", up))
	}
	s.log.Info("message accepted", append(fields, zap.Int64("duration_ms", time.Since(start).Milliseconds()))...)
}

// bodyLimit is the DATA reader's size limit for MaxSize.
func bodyLimit(maxSize int64) int64 {
	if maxSize == NoLimit {
		return math.MaxInt64
	}
	return maxSize
}
