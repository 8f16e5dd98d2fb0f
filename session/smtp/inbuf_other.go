//go:build !unix

package smtp

import (
	"net"
	"syscall"
)

// rawConn: idle sessions keep their reader where reads are not plain read(2).
func rawConn(net.Conn) syscall.RawConn { return nil }

// readFD is never called: rawConn gives no descriptor.
func readFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
