package smtp

import (
	"net"
	"syscall"
)

// kernelPending reports whether the client has sent input that is still in
// the kernel's receive buffer (not yet read into the session's reader): a
// recv with MSG_PEEK|MSG_DONTWAIT, one system call. A connection without a
// descriptor (tests' pipes) reports false.
func kernelPending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var b [1]byte
	pending := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
		return true // never wait: this is a look, not a read
	})
	return pending
}
