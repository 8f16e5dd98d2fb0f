package mta

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"gomta/mta/config"
	"gomta/session/address"
	"gomta/session/limit"
	"gomta/session/selfsigned"
)

// dummyHash is compared against for unknown users of a host with bcrypt
// passwords, so that a wrong user costs what a wrong password costs.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("gomta-dummy"), bcrypt.DefaultCost)
	return h
})

// checkPassword reports whether pass is the password of the account addr,
// in constant time for plaintext and with bcrypt for hashed passwords.
func (h *Host) checkPassword(addr, pass string) bool {
	c := h.live.Load()
	acct, ok := c.account(addr)
	if !ok {
		if c.hashed {
			_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		}
		return false
	}
	want := c.srv.Accounts[acct]
	if config.IsBcrypt(want) {
		return bcrypt.CompareHashAndPassword([]byte(want), []byte(pass)) == nil
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}

// smtpAuth is the SMTP server's AUTH check.
func (h *Host) smtpAuth(_ context.Context, user, pass string) bool {
	return h.checkPassword(user, pass)
}

// plaintextAuth says whether a client at remote may send a password before
// TLS, by the config's plaintext_auth.
func plaintextAuth(c *config.Config, remote net.Addr) bool {
	switch c.PlaintextAuth {
	case "always":
		return true
	case "never":
		return false
	default:
		return c.Trusted(remote)
	}
}

// newLimiter builds a host's connection and login limits; trusted networks
// (as the host's config says at the time) are exempt from the per-IP
// connection limit. Failed logins count against the account as the account
// lookup folds its name (address.Account), on SMTP and POP3 alike: they
// share the one Limiter.
func (h *Host) newLimiter(c *config.Config) *limit.Limiter {
	lc := limitConfig(c)
	lc.ExemptPerIP, lc.Account = h.trusted, address.Account
	return limit.New(lc)
}

// limitConfig is the part of the limits a reload may change.
func limitConfig(c *config.Config) limit.Config {
	return limit.Config{
		MaxConns: c.MaxConnections, MaxConnsPerIP: c.MaxConnectionsPerIP, AuthFailures: c.AuthFailures,
		AuthWindow: time.Duration(c.AuthWindow), AuthDelay: time.Duration(c.AuthDelay),
	}
}

// trusted reports whether remote is in the trusted networks of the host's
// current config.
func (h *Host) trusted(remote net.Addr) bool { return h.live.Load().cfg.Trusted(remote) }

// allowPlain says whether a client at remote may send a password before
// TLS, by the current config's plaintext_auth.
func (h *Host) allowPlain(remote net.Addr) bool { return plaintextAuth(h.live.Load().cfg, remote) }

// TLS is the certificate the servers of a process present. Its Config
// gives the certificate through GetCertificate, so that Reload can swap it:
// a handshake from then on presents the new one, a session already under
// TLS keeps its own.
type TLS struct {
	Config *tls.Config
	cert   atomic.Pointer[tls.Certificate]
}

// NewTLS loads the certificate of c, or makes a self-signed one when
// tls_self_signed is set; nil when TLS is not configured. It says plainly in
// the log when the certificate in use is self-signed.
func NewTLS(c *config.Config, log *zap.Logger) (*TLS, error) {
	var cert tls.Certificate
	switch {
	case c.TLSCert != "":
		var err error
		if cert, err = loadCert(c, log); err != nil {
			return nil, err
		}
	case c.TLSSelfSigned:
		names := make([]string, 0, len(c.Servers))
		for _, s := range c.Servers {
			names = append(names, s.Name)
		}
		certPEM, keyPEM, err := SelfSigned(names)
		if err != nil {
			return nil, err
		}
		if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		log.Warn("TLS uses a self-signed certificate made at start (tls_self_signed): for local use only", zap.Strings("names", names))
	default:
		return nil, nil
	}
	t := &TLS{}
	t.cert.Store(&cert)
	t.Config = &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.cert.Load(), nil },
		MinVersion:     tls.VersionTLS12,
	}
	return t, nil
}

// TLSConfig is NewTLS's Config; nil when TLS is not configured.
func TLSConfig(c *config.Config, log *zap.Logger) (*tls.Config, error) {
	t, err := NewTLS(c, log)
	if t == nil {
		return nil, err
	}
	return t.Config, nil
}

// loadCert reads the certificate and key files of c.
func loadCert(c *config.Config, log *zap.Logger) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return cert, fmt.Errorf("tls: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cert, fmt.Errorf("tls: %s: %w", c.TLSCert, err)
	}
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		log.Warn("TLS certificate is self-signed: clients cannot verify this server", zap.String("file", c.TLSCert))
	} else {
		log.Info("TLS certificate loaded", zap.String("file", c.TLSCert), zap.Strings("names", leaf.DNSNames),
			zap.Time("not_after", leaf.NotAfter))
	}
	return cert, nil
}

// SelfSigned makes a self-signed certificate for names (plus localhost,
// 127.0.0.1 and ::1), valid for a year, as PEM.
func SelfSigned(names []string) (certPEM, keyPEM []byte, err error) {
	c, err := selfsigned.New(append(append([]string{}, names...), "localhost"), []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return nil, nil, err
	}
	return selfsigned.PEM(c)
}

// WriteSelfSigned writes cert.pem and key.pem (0600) for names into dir.
func WriteSelfSigned(dir string, names []string) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := SelfSigned(names)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
