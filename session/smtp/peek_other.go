//go:build !linux

package smtp

import "net"

// kernelPending: only input already read into the session's reader is seen
// on systems other than Linux.
func kernelPending(net.Conn) bool { return false }
