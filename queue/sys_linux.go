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

// bodyFile is a draft's body file on its raw descriptor: os.OpenFile would
// offer it to the poller (which refuses regular files, after O_NONBLOCK is
// set and cleared) and os.NewFile asks for its flags, system calls spent
// for nothing on every message. A draft is used by one goroutine.
type bodyFile struct {
	fd   int
	name string
}

// createBody creates name (O_EXCL) with mode perm for writing.
func createBody(name string, perm os.FileMode) (*bodyFile, error) {
	fd, err := openRaw(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &bodyFile{fd: fd, name: name}, nil
}

func (f *bodyFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Write(f.fd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.name, Err: err}
		}
		n += m
	}
	return n, nil
}

func (f *bodyFile) Sync() error { return f.call("fsync", func() error { return syscall.Fsync(f.fd) }) }

func (f *bodyFile) Chmod(mode os.FileMode) error {
	return f.call("fchmod", func() error { return syscall.Fchmod(f.fd, uint32(mode.Perm())) })
}

// Close closes the descriptor; EINTR is not retried (the descriptor is
// released either way on Linux).
func (f *bodyFile) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// setXattr sets an extended attribute on the file (fsetxattr(2)).
func (f *bodyFile) setXattr(name string, value []byte) error {
	return f.call("fsetxattr", func() error { return unix.Fsetxattr(f.fd, name, value, 0) })
}

// call runs c again while it is interrupted and names f in its error.
func (f *bodyFile) call(op string, c func() error) error {
	for {
		err := c()
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: op, Path: f.name, Err: err}
		}
		return nil
	}
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable; on the raw descriptor (open, fsync, close) for the reasons
// bodyFile gives.
func syncDir(dir string) error {
	fd, err := openRaw(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	f := bodyFile{fd: fd, name: dir}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openRaw is open(2) with O_CLOEXEC, again while interrupted.
func openRaw(name string, flag int, perm os.FileMode) (int, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
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

// removeXattr removes an extended attribute of a file (removexattr(2)).
func removeXattr(path, name string) error {
	for {
		err := unix.Removexattr(path, name)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "removexattr", Path: path, Err: err}
		}
		return nil
	}
}
