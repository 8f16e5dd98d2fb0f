//go:build !linux

package mailbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// syncDir fsyncs a directory so that links, renames and unlinks in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mailbox: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailbox: fsync dir %s: %w", dir, err)
	}
	return nil
}

// spoolBody is the committed spool file being copied into a mailbox.
type spoolBody struct {
	f    *os.File
	off  int64 // where the copy starts: past trace fields not copied
	size int64 // the file's size
}

// openBody opens the spool file at path; size < 0: unknown, found by stat.
func openBody(path string, size int64) (spoolBody, error) {
	f, err := os.Open(path)
	if err != nil {
		return spoolBody{}, err
	}
	if size < 0 {
		fi, err := f.Stat()
		if err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err != nil {
			f.Close()
			return spoolBody{}, err
		}
		size = fi.Size()
	}
	return spoolBody{f: f, size: size}, nil
}

func (b spoolBody) close() { b.f.Close() }

// writeMessage creates dst (O_EXCL, 0600), writes prefix and then the
// body from body.off to its end, and, when sync is set, fsyncs it.
func writeMessage(dst string, prefix []byte, body spoolBody, sync bool) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mailbox: create %s: %w", dst, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("mailbox: close %s: %w", dst, cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, err = out.Write(prefix); err != nil {
		return fmt.Errorf("mailbox: write %s: %w", dst, err)
	}
	if _, err = io.Copy(out, io.NewSectionReader(body.f, body.off, body.size-body.off)); err != nil {
		return fmt.Errorf("mailbox: copy to %s: %w", dst, err)
	}
	if sync {
		if err = out.Sync(); err != nil {
			return fmt.Errorf("mailbox: fsync %s: %w", dst, err)
		}
	}
	return nil
}

// dirHandle is a Maildir's new/ (the Linux version holds it open between
// deliveries).
type dirHandle struct{ path string }

func newDirHandle(path string) dirHandle { return dirHandle{path: path} }

// renameInto renames the file at oldpath to name in the directory.
func (h *dirHandle) renameInto(oldpath, name string) error {
	return os.Rename(oldpath, filepath.Join(h.path, name))
}

// linkInto hard-links the file at oldpath into the directory as name.
func (h *dirHandle) linkInto(oldpath, name string) error {
	return os.Link(oldpath, filepath.Join(h.path, name))
}

// sync fsyncs the directory, making the renames into it durable.
func (h *dirHandle) sync() error { return syncDir(h.path) }

func (h *dirHandle) isOpen() bool { return false }

func (h *dirHandle) close() {}
