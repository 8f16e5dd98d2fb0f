//go:build !linux

package mailbox

import (
	"fmt"
	"os"
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

// openFile is os.OpenFile (the Linux version skips the poller).
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// rename is os.Rename (the Linux version skips its lstat).
func rename(oldname, newname string) error { return os.Rename(oldname, newname) }
