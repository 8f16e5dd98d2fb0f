package mtatest

import (
	"crypto/tls"
	"testing"

	"gomta/session/selfsigned"
)

// Cert is the loopback test certificate (localhost, 127.0.0.1, 127.0.0.2,
// ::1), made once per test binary.
func Cert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := selfsigned.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TLS returns a server configuration serving the test certificate and a
// client configuration that trusts exactly it and checks serverName (""
// when the client under test fills in the dialled host itself).
func TLS(t testing.TB, serverName string) (server, client *tls.Config) {
	t.Helper()
	c := Cert(t)
	return selfsigned.ServerConfig(c), selfsigned.ClientConfig(c, serverName)
}
