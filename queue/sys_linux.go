package queue

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdatasync flushes f's data and the metadata needed to read it back (its
// size), not its timestamps: one write to disk fewer than fsync.
func fdatasync(f *os.File) error {
	return fdCall(f, "fdatasync", func(fd int) error { return syscall.Fdatasync(fd) })
}

// fdCall runs call on f's descriptor, again while it is interrupted
// (EINTR), and reports its error as a *os.PathError for op.
func fdCall(f *os.File, op string, call func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = call(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: serr}
	}
	return nil
}

// openFile is os.OpenFile for regular files and directories, which the
// poller never takes: os.OpenFile offers every descriptor to epoll and sets
// and clears O_NONBLOCK around the refusal, system calls spent for nothing
// on every commit; os.NewFile on the raw descriptor skips them.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// setXattr sets an extended attribute on an open file (fsetxattr(2)).
func setXattr(f *os.File, name string, value []byte) error {
	return fdCall(f, "fsetxattr", func(fd int) error { return unix.Fsetxattr(fd, name, value, 0) })
}

// getXattr reads an extended attribute of a file (getxattr(2)).
func getXattr(path, name string) ([]byte, error) {
	for range 3 { // the value may grow between the size query and the read
		n, err := unix.Getxattr(path, name, nil)
		if err != nil {
			return nil, &os.PathError{Op: "getxattr", Path: path, Err: err}
		}
		buf := make([]byte, n)
		m, err := unix.Getxattr(path, name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr", Path: path, Err: err}
		}
		return buf[:m], nil
	}
	return nil, &os.PathError{Op: "getxattr", Path: path, Err: unix.ERANGE}
}
