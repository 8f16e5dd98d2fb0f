package main

import (
	"syscall"

	"go.uber.org/zap"
)

// raiseFileLimit lifts the soft open-file limit to the hard one: every SMTP or
// POP3 session holds a descriptor, and load tests hold thousands.
func raiseFileLimit(log *zap.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open-file limit", zap.Error(err))
		return
	}
	old := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise the open-file limit", zap.Uint64("limit", old), zap.Error(err))
			return
		}
	}
	log.Info("open-file limit", zap.Uint64("from", old), zap.Uint64("to", lim.Cur))
}
