package smtp

import (
	"crypto/tls"
	"fmt"

	"go.uber.org/zap"
)

// starttls answers STARTTLS (RFC 3207 §4): 220, then the TLS handshake. The
// reply is sent by the handler itself, so it returns a nil reply on success.
//
// Anything the client pipelined after STARTTLS arrived in plain text and is
// thrown away before the handshake (RFC 3207 §6; CVE-2011-0411-style command
// injection); afterwards the session is back in its state right after the
// greeting (RFC 3207 §4.2): no HELO name, no transaction, no AUTH.
func (s *session) starttls(arg string) (*Reply, error) {
	switch {
	case arg != "":
		return replyNoArgs, nil
	case s.conn.TLS:
		return replyTLSActive, nil
	case s.cfg.TLSConfig == nil:
		return replyTLSNotAvail, nil
	}
	if err := s.reply(replyTLSReady); err != nil {
		return nil, err
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	if n := s.buffered(); n > 0 {
		s.br.Discard(s.br.Buffered())
		s.src.drop()
		s.log.Warn("plain-text input after STARTTLS discarded", zap.Int64("bytes", int64(n)))
	}
	if err := s.handshake(); err != nil {
		return nil, err
	}
	s.resetTx()
	s.conn.Helo, s.conn.AuthUser = "", ""
	s.state = stateGreeted
	return nil, nil
}

// handshake runs the server side of a TLS handshake on the connection (for
// STARTTLS and for implicit TLS), bounded by CmdTimeout and the session's end,
// and moves the reader and writer onto the TLS layer. Its error ends the
// session: once a handshake began, nothing more can be said in plain text.
func (s *session) handshake() error {
	tc := tls.Server(s.nc, s.cfg.TLSConfig)
	// The deadline bounds it; Shutdown's cut closes nc, which ends it too.
	s.nc.SetDeadline(s.deadline(s.cfg.CmdTimeout))
	if err := tc.Handshake(); err != nil {
		s.log.Info("TLS handshake failed", zap.Error(err))
		return fmt.Errorf("smtp: TLS handshake: %w", err)
	}
	s.tc = tc
	s.src.drop() // nothing pending: the client waited for the handshake
	s.useReader(tc)
	s.wc = tc
	if s.bw != nil {
		s.bw.Reset(tc)
	}
	s.conn.TLS = true
	s.cfg.Metrics.TLS()
	s.log.Info("TLS started")
	return nil
}
