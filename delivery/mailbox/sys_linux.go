package mailbox

import (
	"fmt"
	"syscall"
)

// syncDir fsyncs a directory so that links, renames and unlinks in it are
// durable. Three system calls on the raw descriptor: os.Open would also try
// the descriptor on epoll and set and clear O_NONBLOCK around the refusal
// (five more per call, strace -c).
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
