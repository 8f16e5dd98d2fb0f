package pop3

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"go.uber.org/zap"
)

// cmdUser records the name for PASS (RFC 1939 §7). The reply is the same for
// every name so that USER does not reveal which accounts exist.
func (s *session) cmdUser(c cmd) response {
	if !s.plainAllowed() {
		return single(replyNeedTLS)
	}
	switch len(c.Args) {
	case 0:
		return single(replyMissingUser)
	case 1:
		if s.utf8 && !utf8.ValidString(c.Args[0]) {
			return single(replyBadUTF8)
		}
		s.user = c.Args[0]
		return single(replySendPass)
	}
	return single(replyTooManyArgs)
}

// cmdUTF8 turns on UTF-8 mode (RFC 6856 §3), allowed in AUTHORIZATION
// state only. UTF-8 names were already accepted by USER before it, as the
// "UTF8 USER" capability announces; after it, a name that is not valid
// UTF-8 is refused. Messages are served as stored either way: gomta never
// downgrades a message, so UTF8 changes nothing on RETR and TOP.
func (s *session) cmdUTF8(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	s.utf8 = true
	return single(replyUTF8)
}

// cmdPass authenticates and locks the maildrop (RFC 1939 §7). The whole rest
// of the line is the password, spaces included (RFC 1939 §7 PASS note).
func (s *session) cmdPass(c cmd) response {
	if s.user == "" {
		return single(replyUserFirst)
	}
	if c.Arg == "" {
		return single(replyMissingPass)
	}
	user := s.user
	s.user = "" // one PASS per USER
	return s.login(user, c.Arg)
}

// backendReply maps a Backend error to a reply: ErrAuth and ErrInUse to their
// response codes, a Reply to itself, anything else to [SYS/TEMP] (logged).
func (s *session) backendReply(msg string, err error, auth Reply) Reply {
	var r Reply
	switch {
	case errors.Is(err, ErrAuth):
		s.log.Info(msg, zap.Error(err))
		return auth
	case errors.Is(err, ErrInUse):
		s.log.Info(msg, zap.Error(err))
		return replyInUse
	case errors.As(err, &r) && !r.OK:
		s.log.Info(msg, zap.Error(err))
		return r
	}
	s.log.Error(msg, zap.Error(err))
	return replyTempFail
}

// cmdQuit ends the session. In TRANSACTION it enters UPDATE and commits the
// deletions (RFC 1939 §6); if that fails nothing is removed and the client is
// told so.
func (s *session) cmdQuit(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	if s.state == stateAuthorization {
		return response{reply: replyBye(s.cfg.Hostname), close: true}
	}
	s.state = stateUpdate
	var del []int
	for i, d := range s.deleted {
		if d {
			del = append(del, i)
		}
	}
	if err := s.drop.Commit(s.ctx, del); err != nil {
		s.log.Error("commit failed", zap.Error(err))
		s.drop.Close()
		return response{reply: replyCommitFailed, close: true}
	}
	for _, i := range del {
		s.log.Info("message deleted", s.msgID(i))
	}
	return response{reply: replyByeLeft(s.cfg.Hostname, len(s.msgs)-s.nDel), close: true}
}

// cmdCapa lists capabilities (RFC 2449 §5).
func (s *session) cmdCapa(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	return response{reply: replyCapa, body: func(w io.Writer) error {
		for _, capa := range s.capabilities() {
			if _, err := io.WriteString(w, capa+"\r\n"); err != nil {
				return err
			}
		}
		return nil
	}}
}

func (s *session) cmdNoop(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	return single(replyOK)
}

// cmdStat gives the drop listing: messages not marked deleted and their
// total size (RFC 1939 §5).
func (s *session) cmdStat(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	return single(replyStat(s.count()))
}

// cmdList gives scan listings (RFC 1939 §5).
func (s *session) cmdList(c cmd) response {
	return s.listing(c, replyList(s.count()), func(num int, m MsgInfo) string {
		return fmt.Sprintf("%d %d", num, m.Size)
	}, func(num int, m MsgInfo) Reply { return replyScan(num, m.Size) })
}

// cmdUidl gives unique-id listings (RFC 1939 §7).
func (s *session) cmdUidl(c cmd) response {
	return s.listing(c, replyUidl, func(num int, m MsgInfo) string {
		return fmt.Sprintf("%d %s", num, m.UID)
	}, func(num int, m MsgInfo) Reply { return replyUID(num, m.UID) })
}

// listing serves LIST and UIDL: with no argument a multi-line listing of the
// messages not marked deleted, with one a single line.
func (s *session) listing(c cmd, head Reply, line func(int, MsgInfo) string, one func(int, MsgInfo) Reply) response {
	switch len(c.Args) {
	case 0:
		return response{reply: head, body: func(w io.Writer) error {
			for i, m := range s.msgs {
				if s.deleted[i] {
					continue
				}
				if _, err := io.WriteString(w, line(i+1, m)+"\r\n"); err != nil {
					return err
				}
			}
			return nil
		}}
	case 1:
		i, bad := s.msgArg(c.Args[0])
		if bad != nil {
			return single(*bad)
		}
		return single(one(i+1, s.msgs[i]))
	}
	return single(replyTooManyArgs)
}

// cmdRetr sends a whole message, streamed from the maildrop (RFC 1939 §5).
func (s *session) cmdRetr(c cmd) response {
	i, bad := s.onlyMsgArg(c)
	if bad != nil {
		return single(*bad)
	}
	rc, err := s.drop.Open(s.ctx, i)
	if err != nil {
		return single(s.backendReply("open message failed", err, replyTempFail))
	}
	return response{reply: replyRetr(s.msgs[i].Size), body: func(w io.Writer) error {
		defer rc.Close()
		buf := s.srv.getBuf()
		defer s.srv.putBuf(buf)
		// The struct hides a WriterTo (os.File's would allocate 32 KiB per call).
		n, err := io.CopyBuffer(w, struct{ io.Reader }{rc}, *buf)
		s.bytesOut += n
		if err != nil {
			return fmt.Errorf("pop3: retr %d: %w", i+1, err)
		}
		s.retrieved++
		s.log.Info("message retrieved", zap.String("command", "RETR"), s.msgID(i), zap.Int64("bytes", n))
		return nil
	}}
}

// cmdTop sends the headers, the blank line and the first m body lines of a
// message (RFC 1939 §7), streamed.
func (s *session) cmdTop(c cmd) response {
	switch len(c.Args) {
	case 0:
		return single(replyMissingMsg)
	case 1:
		return single(replyMissingLines)
	case 2:
	default:
		return single(replyTooManyArgs)
	}
	i, bad := s.msgArg(c.Args[0])
	if bad != nil {
		return single(*bad)
	}
	lines, okNum := parseNumber(c.Args[1])
	if !okNum {
		return single(replyBadLines)
	}
	rc, err := s.drop.Open(s.ctx, i)
	if err != nil {
		return single(s.backendReply("open message failed", err, replyTempFail))
	}
	return response{reply: replyTop, body: func(w io.Writer) error {
		defer rc.Close()
		n, err := copyTop(w, rc, lines)
		s.bytesOut += n
		if err != nil {
			return fmt.Errorf("pop3: top %d: %w", i+1, err)
		}
		s.log.Info("message retrieved", zap.String("command", "TOP"), s.msgID(i), zap.Int64("bytes", n))
		return nil
	}}
}

// copyTop copies the header section, the blank line after it and then at
// most lines body lines from r to w. Lines of any length stream through in
// pieces; only a whole line counts.
func copyTop(w io.Writer, r io.Reader, lines int) (int64, error) {
	br := bufio.NewReader(r)
	var written int64
	inHeader, lineStart := true, true
	body := 0
	for inHeader || body < lines {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			n, werr := w.Write(frag)
			written += int64(n)
			if werr != nil {
				return written, werr
			}
		}
		if err == bufio.ErrBufferFull {
			lineStart = false
			continue
		}
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
		// frag ends a line.
		if inHeader {
			if lineStart && (len(frag) == 1 || (len(frag) == 2 && frag[0] == '\r')) {
				inHeader = false
			}
		} else {
			body++
		}
		lineStart = true
	}
	return written, nil
}

// cmdDele marks a message deleted (RFC 1939 §5); QUIT removes it.
func (s *session) cmdDele(c cmd) response {
	i, bad := s.onlyMsgArg(c)
	if bad != nil {
		return single(*bad)
	}
	s.deleted[i] = true
	s.nDel++
	s.log.Info("message marked deleted", s.msgID(i))
	return single(replyDeleted(i + 1))
}

// msgID is the msg_id field of message i (0-based), for the lines that
// follow a message from its acceptance to its retrieval and deletion.
func (s *session) msgID(i int) zap.Field { return zap.String("msg_id", s.msgs[i].MsgID) }

// cmdRset unmarks every deleted message (RFC 1939 §5).
func (s *session) cmdRset(c cmd) response {
	if len(c.Args) > 0 {
		return single(replyTooManyArgs)
	}
	clear(s.deleted)
	s.nDel = 0
	return single(replyMaildrop(s.count()))
}

// count returns the number and total size of messages not marked deleted.
func (s *session) count() (int, int64) {
	n, size := 0, int64(0)
	for i, m := range s.msgs {
		if !s.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// onlyMsgArg is msgArg for a command whose one argument is a message number
// (RETR, DELE).
func (s *session) onlyMsgArg(c cmd) (int, *Reply) {
	switch len(c.Args) {
	case 0:
		return 0, &replyMissingMsg
	case 1:
		return s.msgArg(c.Args[0])
	default:
		return 0, &replyTooManyArgs
	}
}

// msgArg turns a message-number argument into a 0-based index of a message
// not marked deleted, or the reply that says why not.
func (s *session) msgArg(arg string) (int, *Reply) {
	num, okNum := parseNumber(arg)
	if !okNum {
		return 0, &replyBadMsg
	}
	if num < 1 || num > len(s.msgs) {
		return 0, &replyNoSuchMsg
	}
	if s.deleted[num-1] {
		r := replyAlreadyDeleted(num)
		return 0, &r
	}
	return num - 1, nil
}

// parseNumber accepts a plain non-negative decimal (no sign, at most 9
// digits, so it always fits an int).
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
