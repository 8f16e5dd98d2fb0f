package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// smtpPort is the well-known port mail exchangers listen on (IANA "smtp",
// the port RFC 5321 relay uses).
const smtpPort = "25"

// Enhanced codes for resolution failures (RFC 3463 §3.5).
const (
	enhBadDestSystem = "5.1.2" // bad destination system address: no such mail domain
	enhDirectoryFail = "4.4.3" // directory server failure: DNS is not answering
)

// Target is one place to try to deliver a domain's mail.
type Target struct {
	Host string // mail exchanger name (for logs and Remote-MTA)
	Addr string // host:port to dial
}

// ResolveError says why a domain could not be turned into targets.
// NotFound errors are permanent (the domain has no mail exchanger we know
// of); the others (DNS timeouts, server failures) are temporary.
type ResolveError struct {
	Domain   string
	NotFound bool
	Err      error // underlying DNS error, nil for a fake-DNS miss
}

func (e *ResolveError) Error() string {
	what := "lookup failed"
	if e.NotFound {
		what = "no mail exchanger"
	}
	// No package prefix: this text is what a bounce tells the sender.
	if e.Err != nil {
		return fmt.Sprintf("%s for %s: %v", what, e.Domain, e.Err)
	}
	return fmt.Sprintf("%s for %s", what, e.Domain)
}

func (e *ResolveError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may help.
func (e *ResolveError) Temporary() bool { return !e.NotFound }

// Enhanced is the RFC 3463 status for a bounce or a log line.
func (e *ResolveError) Enhanced() string {
	if e.NotFound {
		return enhBadDestSystem
	}
	return enhDirectoryFail
}

// Resolver finds where a domain's mail goes: first the static tables (the
// course's fake DNS), then, when DNS is set, real MX and address lookups.
type Resolver struct {
	MX map[string]string // domain -> mail host name (keys and values lower-case, trailing dot removed)
	// P maps a host name (lower-case, no trailing dot) to the "host:port" it
	// is dialled at, parsed once where the table is read (the config's P).
	P   map[string]string
	DNS bool // fall back to real DNS MX/A lookups (net.Resolver) when a domain has no MX entry; never set in tests

	// Net is the DNS resolver used when DNS is set; nil means net.DefaultResolver.
	Net *net.Resolver
}

// normName lower-cases a domain name and drops the root's trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// Lookup returns the targets for domain, in the order to try them.
//
// A domain with an MX entry goes to that host, addressed through P. A domain
// without one but with a P entry of its own is its own mail exchanger (the
// implicit MX of RFC 5321 §5.1). Otherwise, with DNS set, real MX records are
// used (falling back to the domain's address, again §5.1); without DNS the
// domain is not found, a permanent failure.
func (r *Resolver) Lookup(ctx context.Context, domain string) ([]Target, error) {
	d := normName(domain)
	if d == "" {
		return nil, &ResolveError{Domain: domain, NotFound: true}
	}
	if host, ok := r.MX[d]; ok {
		host = normName(host)
		if addr, ok := r.P[host]; ok {
			return []Target{{Host: host, Addr: addr}}, nil
		}
		if r.DNS {
			return []Target{{Host: host, Addr: net.JoinHostPort(host, smtpPort)}}, nil
		}
		return nil, &ResolveError{Domain: d, NotFound: true,
			Err: fmt.Errorf("mail exchanger %s has no P entry", host)}
	}
	if addr, ok := r.P[d]; ok {
		return []Target{{Host: d, Addr: addr}}, nil
	}
	if r.DNS {
		return r.lookupDNS(ctx, d)
	}
	return nil, &ResolveError{Domain: d, NotFound: true}
}

// lookupDNS asks real DNS: MX records sorted by preference (net sorts
// them), or the domain itself when it has none (RFC 5321 §5.1).
func (r *Resolver) lookupDNS(ctx context.Context, d string) ([]Target, error) {
	res := r.Net
	if res == nil {
		res = net.DefaultResolver
	}
	mxs, err := res.LookupMX(ctx, d)
	if err != nil && !isNotFound(err) {
		return nil, &ResolveError{Domain: d, Err: err}
	}
	var ts []Target
	for _, mx := range mxs {
		h := normName(mx.Host)
		if h == "" {
			// A null MX (RFC 7505): the domain accepts no mail.
			return nil, &ResolveError{Domain: d, NotFound: true, Err: errors.New("null MX")}
		}
		ts = append(ts, Target{Host: h, Addr: net.JoinHostPort(h, smtpPort)})
	}
	if len(ts) > 0 {
		return ts, nil
	}
	if _, err := res.LookupHost(ctx, d); err != nil {
		return nil, &ResolveError{Domain: d, NotFound: isNotFound(err), Err: err}
	}
	return []Target{{Host: d, Addr: net.JoinHostPort(d, smtpPort)}}, nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
