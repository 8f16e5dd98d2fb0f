package mailbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// dirHandle is a Maildir's new/ held open by its actor between deliveries
// that follow each other closely: the batch's renames are made relative to
// it and its fsync goes through it, an open and a close fewer per batch.
// Renames and fsync meet the same directory, and it is the one at path:
// the first rename of a batch checks that path still names the directory
// held (device and inode), so that a new/ moved aside and made again
// (mv new new.old; mkdir new) gets the mail, not the old one POP3 no
// longer reads; a rename into a removed directory fails and is retried
// once on a fresh descriptor. Only the actor's goroutine uses it.
type dirHandle struct {
	path     string
	fd       int // -1: closed
	dev, ino uint64
	checked  bool // path was found to name fd's directory in this batch
}

func newDirHandle(path string) dirHandle { return dirHandle{path: path, fd: -1} }

// renameInto renames the file at oldpath to name in the directory.
func (h *dirHandle) renameInto(oldpath, name string) error {
	for attempt := 0; ; attempt++ {
		if h.fd >= 0 && !h.checked && !h.samePath() {
			h.close() // new/ was replaced since it was opened
		}
		if h.fd < 0 {
			if err := h.open(); err != nil {
				return err
			}
		}
		h.checked = true
		err := retry(func() error { return unix.Renameat(unix.AT_FDCWD, oldpath, h.fd, name) })
		if err == syscall.ENOENT && attempt == 0 {
			h.close() // new/ may be gone since it was opened: look it up again
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: h.path + "/" + name, Err: err}
		}
		return nil
	}
}

// linkInto hard-links the file at oldpath into the directory as name
// (linkat(2), not following a symbolic link). A new/ looked up again is
// handled as in renameInto.
func (h *dirHandle) linkInto(oldpath, name string) error {
	for attempt := 0; ; attempt++ {
		if h.fd >= 0 && !h.checked && !h.samePath() {
			h.close()
		}
		if h.fd < 0 {
			if err := h.open(); err != nil {
				return err
			}
		}
		h.checked = true
		err := retry(func() error { return unix.Linkat(unix.AT_FDCWD, oldpath, h.fd, name, 0) })
		if err == syscall.ENOENT && attempt == 0 {
			h.close() // new/ (or the spool file) may be gone: look new/ up again
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "link", Old: oldpath, New: h.path + "/" + name, Err: err}
		}
		return nil
	}
}

// open opens path and records which directory it is.
func (h *dirHandle) open() error {
	fd, err := openRaw(h.path, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return &os.PathError{Op: "fstat", Path: h.path, Err: err}
	}
	h.fd, h.dev, h.ino = fd, st.Dev, st.Ino
	return nil
}

// samePath reports whether path still names the directory held open.
func (h *dirHandle) samePath() bool {
	var st syscall.Stat_t
	return syscall.Stat(h.path, &st) == nil && st.Dev == h.dev && st.Ino == h.ino
}

// sync fsyncs the directory, making the renames into it durable. On error
// the descriptor is closed: the next batch starts afresh.
func (h *dirHandle) sync() error {
	h.checked = false // the next batch checks path again
	if h.fd < 0 {
		return syncDir(h.path)
	}
	if err := retry(func() error { return syscall.Fsync(h.fd) }); err != nil {
		h.close()
		return fmt.Errorf("mailbox: fsync dir %s: %w", h.path, err)
	}
	return nil
}

// isOpen reports whether the handle holds a descriptor.
func (h *dirHandle) isOpen() bool { return h.fd >= 0 }

// close releases the descriptor, if any.
func (h *dirHandle) close() {
	if h.fd >= 0 {
		syscall.Close(h.fd)
		h.fd = -1
	}
}

// spoolBody is the committed spool file being copied into a mailbox, open
// on a raw descriptor: os.NewFile would ask for its flags (fcntl) on every
// delivery, and nothing here needs the poller or an *os.File.
type spoolBody struct {
	fd   int
	off  int64 // where the copy starts: past trace fields not copied
	size int64 // the file's size
}

// openBody opens the spool file at path for reading. size is its length
// when the caller knows it (the queue's envelope records it, and a body is
// never modified once committed); when size < 0 an fstat finds it and
// checks that it is a regular file.
func openBody(path string, size int64) (spoolBody, error) {
	fd, err := openRaw(path, syscall.O_RDONLY, 0)
	if err != nil {
		return spoolBody{}, err
	}
	if size < 0 {
		var st syscall.Stat_t
		if err = fstat(fd, &st); err == nil && st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			err = errors.New("not a regular file")
		}
		if err != nil {
			syscall.Close(fd)
			return spoolBody{}, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		size = st.Size
	}
	return spoolBody{fd: fd, size: size}, nil
}

func (b spoolBody) close() { syscall.Close(b.fd) }

// writeMessage creates dst (O_EXCL, 0600), writes prefix and then the
// body from body.off to its end, and, when sync is set, fsyncs it. The body is copied
// kernel-side (copy_file_range) when the file system allows it, else
// through a buffer; either way from body.off, so a retry under a new name
// copies it whole again. Raw descriptors throughout: os.NewFile would
// ask each descriptor for its flags (an fcntl per file per delivery).
func writeMessage(dst string, prefix []byte, body spoolBody, sync bool) (err error) {
	fd, err := openRaw(dst, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mailbox: create %s: %w", dst, err)
	}
	defer func() {
		if cerr := syscall.Close(fd); err == nil && cerr != nil {
			err = fmt.Errorf("mailbox: close %s: %w", dst, cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if err = writeAll(fd, prefix); err != nil {
		return fmt.Errorf("mailbox: write %s: %w", dst, err)
	}
	if err = copyBody(fd, body); err != nil {
		return fmt.Errorf("mailbox: copy to %s: %w", dst, err)
	}
	if sync {
		if err = retry(func() error { return syscall.Fsync(fd) }); err != nil {
			return fmt.Errorf("mailbox: fsync %s: %w", dst, err)
		}
	}
	return nil
}

// copyBody appends body from body.off to its end to fd.
func copyBody(fd int, body spoolBody) error {
	off := body.off
	for off < body.size {
		n, err := unix.CopyFileRange(body.fd, &off, fd, nil, int(body.size-off), 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EXDEV || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP || err == syscall.EINVAL:
			return copyBuffered(fd, body, off)
		case err != nil:
			return err
		case n == 0:
			// Some file systems (FUSE, some network and overlay ones)
			// answer 0 without copying: read and write instead, which
			// also tells a spool file shorter than its envelope says.
			return copyBuffered(fd, body, off)
		}
	}
	return nil
}

// copyBuffered is copyBody through user space, from offset off on (spool
// and Maildir on file systems that cannot copy between each other).
func copyBuffered(fd int, body spoolBody, off int64) error {
	buf := make([]byte, min(body.size-off, 64<<10))
	for off < body.size {
		n, err := syscall.Pread(body.fd, buf[:min(int64(len(buf)), body.size-off)], off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		if err := writeAll(fd, buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// writeAll writes p to fd whole.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := syscall.Write(fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func fstat(fd int, st *syscall.Stat_t) error {
	return retry(func() error { return syscall.Fstat(fd, st) })
}

// openRaw is open(2) with O_CLOEXEC, again while interrupted.
func openRaw(name string, flag int, perm uint32) (int, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, perm)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

// retry runs call again while it is interrupted (EINTR).
func retry(call func() error) error {
	for {
		if err := call(); err != syscall.EINTR {
			return err
		}
	}
}
