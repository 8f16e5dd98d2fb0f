package serve

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"
)

// acceptWithBackoff returns the next connection of l. A failing Accept (out
// of descriptors, a connection aborted before it was taken, ...) is logged
// and retried after a pause that doubles from 5 ms to at most 1 s, as
// net/http does, rather than spinning or ending the server. It returns the
// error once l is closed (net.ErrClosed) or stop reports true.
func acceptWithBackoff(l net.Listener, stop func() bool, log *zap.Logger) (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err == nil {
			return c, nil
		}
		if stop() || errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		log.Warn("accept failed", zap.Error(err))
		time.Sleep(backoff)
	}
}
