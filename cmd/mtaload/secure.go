package main

import (
	"crypto/tls"
	"errors"
	"strings"
)

// loadTLSConfig is the client side of -tls. A load generator measures a
// server, it does not trust one: the certificate is not checked (test
// servers use self-signed ones). One session cache is shared by every
// worker, so that later sessions resume TLS as a real client's would
// (RFC 8446 §2.2); the first handshakes are full ones.
func loadTLSConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // measuring, not trusting: see above
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(1024),
	}
}

// parseAuth splits -auth "user:pass" at the first colon (a user name has
// none; a password may).
func parseAuth(s string) (user, pass string, err error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", errors.New("-auth: want user:pass")
	}
	return user, pass, nil
}
