package serve

import (
	"errors"
	"net"
	"testing"

	"go.uber.org/zap"
)

// flakyListener fails its first n Accepts (as on EMFILE), then accepts.
type flakyListener struct {
	net.Listener
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("accept: too many open files")
	}
	return f.Listener.Accept()
}

func TestAcceptRetriesThenStops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			defer c.Close()
		}
	}()
	c, err := acceptWithBackoff(&flakyListener{Listener: l, fails: 3}, func() bool { return false }, zap.NewNop())
	if err != nil {
		t.Fatalf("after three failed Accepts: %v, want the connection", err)
	}
	c.Close()
	// A failure while stopping ends at once.
	if _, err := acceptWithBackoff(&flakyListener{Listener: l, fails: 1}, func() bool { return true }, zap.NewNop()); err == nil {
		t.Fatal("stop reported true: want the error")
	}
	l.Close()
	if _, err := acceptWithBackoff(l, func() bool { return false }, zap.NewNop()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed listener: %v, want net.ErrClosed", err)
	}
}
