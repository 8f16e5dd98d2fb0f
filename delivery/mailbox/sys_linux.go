package mailbox

import (
	"fmt"
	"os"
	"syscall"
)

// syncDir fsyncs a directory so that links, renames and unlinks in it are
// durable. It works on the raw descriptor (open, fsync, close): os.Open
// would also offer a directory's descriptor to the poller, which refuses it
// after O_NONBLOCK was set and cleared, system calls spent for nothing on
// every delivery batch.
func syncDir(dir string) error {
	var fd int
	var err error
	for {
		if fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mailbox: open dir %s: %w", dir, err)
	}
	for {
		if err = syscall.Fsync(fd); err != syscall.EINTR {
			break
		}
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailbox: fsync dir %s: %w", dir, err)
	}
	return nil
}

// openFile is os.OpenFile on the raw descriptor, for the regular files of a
// delivery (the spool file read, the message file written): os.OpenFile
// offers every descriptor to the poller, which refuses regular files, and
// sets and clears O_NONBLOCK around the refusal, system calls spent for
// nothing twice per delivery.
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

// rename is os.Rename without its lstat of newname (which guards against
// renaming over a directory): a delivery renames tmp/<name> to new/<name>,
// a fresh unique name, so the lstat would fail with ENOENT every time.
func rename(oldname, newname string) error {
	for {
		err := syscall.Rename(oldname, newname)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
		}
		return nil
	}
}
