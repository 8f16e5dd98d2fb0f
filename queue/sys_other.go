//go:build !linux

package queue

import (
	"errors"
	"os"
)

// fdatasync is fsync where fdatasync(2) is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// bodyFile is a draft's body file.
type bodyFile struct{ *os.File }

// createBody creates name (O_EXCL) with mode perm for writing.
func createBody(name string, perm os.FileMode) (*bodyFile, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &bodyFile{f}, nil
}

// syncDir fsyncs a directory, making the entries created or renamed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// errNoXattr: extended attributes are used on Linux only; elsewhere a body
// whose envelope record is lost is set aside in corrupt/.
var errNoXattr = errors.New("extended attributes not supported here")

func (*bodyFile) setXattr(string, []byte) error { return errNoXattr }

func getXattr(string, string) ([]byte, error) { return nil, errNoXattr }

func removeXattr(string, string) error { return errNoXattr }
