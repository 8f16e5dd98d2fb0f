//go:build unix

package smtp

import (
	"net"
	"syscall"
)

// rawConn is the raw descriptor access of a TCP or Unix-domain connection,
// whose reads awaitInput may make itself; nil for any other net.Conn (a
// wrapper may hold input of its own that a raw read would skip).
func rawConn(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readFD is one read(2) of the non-blocking descriptor fd, retried on EINTR.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
