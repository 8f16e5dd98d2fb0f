package mailbox

import (
	"fmt"
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
