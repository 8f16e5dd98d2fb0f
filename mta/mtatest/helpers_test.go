package mtatest

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

func TestFreePortsDistinctBindableAndOutsideTheEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, hi := drawRange()
	seen := map[int]bool{}
	for range 5 {
		for _, p := range FreePorts(t, 4) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p < lo || p >= hi {
				t.Errorf("port %d outside [%d, %d)", p, lo, hi)
			}
			l, err := net.Listen("tcp", Addr(p))
			if err != nil {
				t.Fatalf("port %d: %v", p, err)
			}
			l.Close()
		}
	}
}

func TestLogBufferWaitFor(t *testing.T) {
	t.Parallel()
	var l LogBuffer
	go func() {
		for range 3 {
			io.WriteString(&l, "line\n")
		}
	}()
	l.WaitFor(t, "line\n", 3)
	if l.String() != "line\nline\nline\n" {
		t.Errorf("String() = %q", l.String())
	}
}

func TestTLSHandshake(t *testing.T) {
	t.Parallel()
	srv, cli := TLS(t, "127.0.0.1")
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		errc <- c.(*tls.Conn).Handshake()
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), cli)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	c.Close()
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}
