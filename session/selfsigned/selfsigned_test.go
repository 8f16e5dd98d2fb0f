package selfsigned

import (
	"crypto/tls"
	"net"
	"testing"
)

// TestHandshake: a client configured with ClientConfig completes a TLS
// handshake with a server using ServerConfig, by IP and by name, and a
// client without it refuses the certificate.
func TestHandshake(t *testing.T) {
	c, err := Loopback()
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		conn, err := tls.Dial("tcp", l.Addr().String(), ClientConfig(c, name))
		if err != nil {
			t.Errorf("handshake as %s: %v", name, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		conn.Close()
		t.Error("a client with the system roots accepted a self-signed certificate")
	}
	if conn, err := tls.Dial("tcp", l.Addr().String(), ClientConfig(c, "mx.example.org")); err == nil {
		conn.Close()
		t.Error("a name the certificate does not hold was accepted")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	c, err := New([]string{"mx.example.test"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if back.Leaf == nil || back.Leaf.Subject.CommonName != "mx.example.test" {
		t.Errorf("round trip: %+v", back.Leaf)
	}
}
