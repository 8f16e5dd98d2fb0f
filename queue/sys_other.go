//go:build !linux

package queue

import (
	"errors"
	"os"
)

// fdatasync is fsync where fdatasync(2) is not available.
func fdatasync(f *os.File) error { return f.Sync() }

func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// errNoXattr: extended attributes are used on Linux only; elsewhere a body
// whose envelope record is lost is set aside in corrupt/.
var errNoXattr = errors.New("extended attributes not supported here")

func setXattr(*os.File, string, []byte) error { return errNoXattr }

func getXattr(string, string) ([]byte, error) { return nil, errNoXattr }
