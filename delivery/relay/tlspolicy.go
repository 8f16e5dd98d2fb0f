package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"gomta/session/address"
	"gomta/session/reply"
	"gomta/session/smtpclient"
)

// TLSMode is how much a destination domain requires of its connections'
// TLS.
type TLSMode int

const (
	// TLSOpportunistic: STARTTLS when the next MTA offers it (and
	// Options.TLS is set), any certificate; plain text when it is not
	// offered (RFC 7435).
	TLSOpportunistic TLSMode = iota
	// TLSRequire: STARTTLS must be offered and succeed; any certificate.
	TLSRequire
	// TLSVerify: as TLSRequire, and the certificate must chain to Roots
	// and name the mail exchanger's host name (RFC 6125).
	TLSVerify
)

// enhTLSFailed is the status of a TLS that policy requires and the mail
// exchanger did not give (RFC 3463 X.7.5 cryptographic failure; temporary:
// the next attempt may find it). Postfix writes the same.
const enhTLSFailed = "4.7.5"

// DomainTLS is one destination domain's TLS policy.
type DomainTLS struct {
	Mode TLSMode
	// Roots are the CAs a TLSVerify certificate must chain to; nil: the
	// system's roots.
	Roots *x509.CertPool
}

// TLSPolicy maps destination domains to their policy. The key "*" is the
// policy of the domains not listed; a domain in neither is
// TLSOpportunistic. A nil *TLSPolicy is opportunistic everywhere. It is
// read-only once built, so that relays of concurrent workers share it.
type TLSPolicy struct{ domains map[string]DomainTLS }

// NewTLSPolicy returns the policy of domains (keys are folded here).
func NewTLSPolicy(domains map[string]DomainTLS) *TLSPolicy {
	p := &TLSPolicy{domains: make(map[string]DomainTLS, len(domains))}
	for d, pol := range domains {
		p.domains[address.FoldDomain(d)] = pol
	}
	return p
}

// For returns domain's policy.
func (p *TLSPolicy) For(domain string) DomainTLS {
	if p == nil {
		return DomainTLS{}
	}
	if pol, ok := p.domains[address.FoldDomain(domain)]; ok {
		return pol
	}
	return p.domains["*"]
}

// connTLS is what a connection's TLS proved, so that the cache hands a
// connection only to a domain whose policy it meets.
type connTLS struct {
	on       bool           // STARTTLS done
	verified bool           // the certificate chained to roots and named host
	host     string         // the name verified
	roots    *x509.CertPool // the roots it was verified against (nil: the system's)
}

// meets reports whether a connection to target host with this TLS may
// carry mail under pol.
func (ct connTLS) meets(pol DomainTLS, host string) bool {
	switch pol.Mode {
	case TLSRequire:
		return ct.on
	case TLSVerify:
		return ct.verified && ct.host == host && ct.roots == pol.Roots
	}
	return true
}

// hello greets t on c and sets up TLS as domain's policy says: with
// TLSOpportunistic as HelloTLS with Options.TLS, otherwise STARTTLS must
// be offered and succeed (and, with TLSVerify, the certificate verify
// against t.Host), or the attempt fails with 4.7.5 naming the policy.
func (rl *Relay) hello(c *smtpclient.Client, domain string, t Target, pol DomainTLS) (connTLS, error) {
	if pol.Mode == TLSOpportunistic {
		err := c.HelloTLS(rl.opt.TLS)
		return connTLS{on: c.TLS()}, err
	}
	if err := c.Hello(); err != nil {
		return connTLS{}, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return connTLS{}, tlsError(domain, t, c.RemoteAddr(), "the server did not offer STARTTLS", nil)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ct := connTLS{on: true}
	if pol.Mode == TLSVerify {
		cfg.ServerName, cfg.RootCAs = t.Host, pol.Roots
		ct = connTLS{on: true, verified: true, host: t.Host, roots: pol.Roots}
	} else {
		cfg.InsecureSkipVerify = true //nolint:gosec // policy "require": encryption without authentication
	}
	if err := c.StartTLS(cfg); err != nil {
		return connTLS{}, tlsError(domain, t, c.RemoteAddr(), tlsReason(err), err)
	}
	return ct, c.Hello()
}

// tlsReason says why STARTTLS failed, in a phrase after "but".
func tlsReason(err error) string {
	var cve *tls.CertificateVerificationError
	var r *reply.Reply
	switch {
	case errors.As(err, &cve):
		return "certificate verification failed: " + cve.Err.Error()
	case errors.As(err, &r):
		return "the server refused STARTTLS: " + r.Error()
	}
	return "the TLS handshake failed: " + reason(err)
}

// tlsError is the temporary failure of a TLS that domain's policy requires
// at target t (remote: the address reached).
func tlsError(domain string, t Target, remote net.Addr, why string, err error) *ConnError {
	addr := t.Addr
	if remote != nil {
		addr = remote.String()
	}
	return &ConnError{Op: "STARTTLS with", Host: t.Host, Addr: addr,
		Reason: fmt.Sprintf("TLS required by policy for %s, but %s", domain, why), Enhanced: enhTLSFailed, Err: err}
}

// helloError is netError for a failed hello, keeping a TLS policy failure
// as it is (netError would report it as a lost connection).
func helloError(ctx context.Context, t Target, remote net.Addr, err error) error {
	var ce *ConnError
	if ctx.Err() == nil && errors.As(err, &ce) && ce.Enhanced == enhTLSFailed {
		return err
	}
	return netError(ctx, t, remote, err)
}
