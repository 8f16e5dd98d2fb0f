package smtp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// readBufSize is the size of a session's command reader (and of the buffer
// its first read after an idle wait lands in): a command line is at most
// 512 octets (RFC 5321 §4.5.3.1.4), and 4 KiB holds a pipelined group.
const readBufSize = 4096

// An idle session (W6 holds 10,000 of them) keeps no read buffer: before it
// waits for the next command with nothing buffered, it gives its
// bufio.Reader back to the server's pool and waits for the socket to become
// readable through syscall.RawConn, whose callback reads straight into a
// pooled buffer only once data is there (a read that would block gives the
// buffer back and parks the goroutine). The bytes read then prime a pooled
// bufio.Reader through idleSource. This costs no system call more than a
// plain conn.Read: the one read that finds data is the one that fills.
//
// Connections without a descriptor (tests' pipes) and TLS sessions keep
// their reader for the whole session: crypto/tls holds its own buffers
// anyway.

// idleSource is what a pooled bufio.Reader reads from: first the bytes of
// the read that ended the idle wait, then the connection.
type idleSource struct {
	srv     *Server
	buf     *[readBufSize]byte // holds pending; back to srv.inbufs once drained
	pending []byte
	conn    io.Reader
}

func (r *idleSource) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		return r.conn.Read(p)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	if len(r.pending) == 0 {
		r.drop()
	}
	return n, nil
}

// drop gives the buffer of the first read back to the pool.
func (r *idleSource) drop() {
	if r.buf != nil {
		r.srv.inbufs.Put(r.buf)
	}
	r.buf, r.pending = nil, nil
}

// buffered is the number of input octets read but not yet consumed.
func (s *session) buffered() int {
	if s.br == nil {
		return 0
	}
	return s.br.Buffered() + len(s.src.pending)
}

// useReader makes the session read from src through a reader of its own,
// taken from the pool if it holds none.
func (s *session) useReader(src io.Reader) {
	if s.br == nil {
		s.br = s.srv.readers.Get().(*bufio.Reader)
	}
	s.br.Reset(src)
}

// releaseReader gives the reader and any first-read buffer back to the
// pools; the session must have nothing buffered, or be ending.
func (s *session) releaseReader() {
	s.src.drop()
	if s.br != nil {
		s.br.Reset(nil)
		s.srv.readers.Put(s.br)
		s.br = nil
	}
}

// awaitInput returns once input is buffered for the next command, under
// the read deadline already set. A session with a raw descriptor and
// nothing buffered waits without a buffer (see above); its error is the
// read's (a timeout, io.EOF, a reset).
func (s *session) awaitInput() error {
	if s.rc == nil || s.tc != nil {
		if s.br == nil {
			s.useReader(s.nc)
		}
		return nil
	}
	if s.buffered() > 0 {
		return nil
	}
	s.releaseReader()
	if s.fill == nil {
		s.fill = s.fillFromFD // once: a closure per wait would be allocated per command
	}
	err := s.rc.Read(s.fill)
	buf, n, rerr := s.wbuf, s.wn, s.werr
	s.wbuf, s.werr = nil, nil
	switch {
	case err == nil && rerr == nil && n > 0:
		s.src = idleSource{srv: s.srv, buf: buf, pending: buf[:n], conn: s.nc}
		s.useReader(&s.src)
		return nil
	case buf != nil:
		s.srv.inbufs.Put(buf)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "raw-read" {
		oe.Op = "read" // the same error text as conn.Read's, in the session end line
	}
	if err != nil {
		return err
	}
	if rerr != nil {
		return &net.OpError{Op: "read", Net: "tcp", Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	return io.EOF
}

// fillFromFD is awaitInput's syscall.RawConn callback: one read into a
// pooled buffer; when it would block, the buffer goes back and it waits.
func (s *session) fillFromFD(fd uintptr) bool {
	s.wbuf = s.srv.inbufs.Get().(*[readBufSize]byte)
	s.wn, s.werr = readFD(fd, s.wbuf[:])
	if errors.Is(s.werr, syscall.EAGAIN) {
		s.srv.inbufs.Put(s.wbuf) // nothing yet: wait without it
		s.wbuf = nil
		return false
	}
	return true
}

// drain reads and throws away up to limit octets of conn (nc, or the TLS
// layer over it) until the end of stream, an error or the read deadline.
// On a raw descriptor it waits without a buffer, as awaitInput does: when
// W6's 10,000 sessions quit at once, a buffer held by each lingering
// session (io.Discard's are 8 KiB) would be 80 MiB.
func (s *session) drain(conn io.Reader, limit int64) {
	s.releaseReader()
	if s.rc == nil || s.tc != nil {
		io.Copy(io.Discard, io.LimitReader(conn, limit))
		return
	}
	for limit > 0 {
		var n int
		var rerr error
		err := s.rc.Read(func(fd uintptr) bool {
			buf := s.srv.inbufs.Get().(*[readBufSize]byte)
			n, rerr = readFD(fd, buf[:min(int64(len(buf)), limit)])
			s.srv.inbufs.Put(buf)
			return !errors.Is(rerr, syscall.EAGAIN)
		})
		if err != nil || rerr != nil || n <= 0 {
			return
		}
		limit -= int64(n)
	}
}
