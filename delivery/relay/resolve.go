package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// smtpPort is the well-known port mail exchangers listen on (IANA "smtp",
// the port RFC 5321 relay uses): the port of addresses found through DNS
// when the Resolver's Port is 0.
const smtpPort = 25

// Enhanced codes for resolution failures (RFC 3463 §3.5, RFC 7505 §4.3).
const (
	enhBadDestSystem = "5.1.2"  // bad destination system address: no such mail domain
	enhNullMX        = "5.1.10" // recipient address has null MX (RFC 7505 §4.3, RFC 7504)
	enhDirectoryFail = "4.4.3"  // directory server failure: DNS is not answering
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
	// NullMX: the domain publishes a null MX (RFC 7505), it accepts no
	// mail; permanent.
	NullMX bool
	Err    error // underlying DNS error, nil for a fake-DNS miss
}

func (e *ResolveError) Error() string {
	what := "lookup failed"
	switch {
	case e.NullMX:
		return fmt.Sprintf("domain %s accepts no mail (null MX)", e.Domain)
	case e.NotFound:
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
func (e *ResolveError) Temporary() bool { return !e.NotFound && !e.NullMX }

// Enhanced is the RFC 3463 status for a bounce or a log line.
func (e *ResolveError) Enhanced() string {
	switch {
	case e.NullMX:
		return enhNullMX
	case e.NotFound:
		return enhBadDestSystem
	}
	return enhDirectoryFail
}

// Resolver finds where a domain's mail goes: first the static tables (the
// course's fake DNS), then, when DNS is set, real MX and address lookups.
// Every target it returns from DNS is an IP address and port: the dialler
// never resolves a name itself, so that no query goes to any resolver but
// Net.
type Resolver struct {
	MX map[string]string // domain -> mail host name (keys and values lower-case, trailing dot removed)
	// P maps a host name (lower-case, no trailing dot) to the "host:port" it
	// is dialled at, parsed once where the table is read (the config's P).
	P   map[string]string
	DNS bool // fall back to real DNS MX/A/AAAA lookups when a domain has no MX entry

	// Net is the DNS resolver used when DNS is set; nil means
	// net.DefaultResolver (the system's). See DNSClient.
	Net *net.Resolver
	// Port is the SMTP port dialled at addresses found through DNS; 0 means
	// 25. Tables' [P] entries carry their own ports.
	Port int
}

// DNSClient returns a resolver that sends every query to servers
// ("ip:port"), in turn, instead of the system's name servers; nil when
// servers is empty (the system's resolver is used). Go's own resolver is
// used (PreferGo), so that no query goes through the C library either.
func DNSClient(servers []string) *net.Resolver {
	if len(servers) == 0 {
		return nil
	}
	servers = slices.Clone(servers)
	var next atomic.Uint32
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		// The address asked for is one of the system's name servers: replaced.
		addr := servers[int(next.Add(1)-1)%len(servers)]
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// normName lower-cases a domain name and drops the root's trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// Lookup returns the targets for domain, in the order to try them.
//
// A domain with an MX entry goes to that host, addressed through P (or,
// with DNS set and no P entry, through the host's DNS addresses). A domain
// without one but with a P entry of its own is its own mail exchanger (the
// implicit MX of RFC 5321 §5.1). Otherwise, with DNS set, real MX records
// are used (lookupDNS); without DNS the domain is not found, a permanent
// failure.
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
			return r.lookupHosts(ctx, d, []string{host})
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

func (r *Resolver) net() *net.Resolver {
	if r.Net == nil {
		return net.DefaultResolver
	}
	return r.Net
}

// lookupDNS asks real DNS for d's MX records: the mail exchangers in
// preference order, random among equal preferences (RFC 5321 §5.1), each
// with all its addresses. No MX record → the domain's own addresses
// (implicit MX, §5.1); a name that does not exist (NXDOMAIN) → not found
// (5.1.2); a null MX (RFC 7505) → 5.1.10; a server failure or timeout →
// temporary (4.4.3).
func (r *Resolver) lookupDNS(ctx context.Context, d string) ([]Target, error) {
	mxs, err := r.net().LookupMX(ctx, rooted(d))
	if err != nil && !isNotFound(err) {
		return nil, &ResolveError{Domain: d, Err: err}
	}
	// Go's resolver reports NXDOMAIN and "no MX record" alike (not found);
	// the address lookup of the implicit MX tells them apart.
	if len(mxs) == 1 && normName(mxs[0].Host) == "" {
		return nil, &ResolveError{Domain: d, NullMX: true}
	}
	hosts := mxOrder(mxs)
	if len(hosts) == 0 {
		hosts = []string{d}
	}
	return r.lookupHosts(ctx, d, hosts)
}

// mxOrder gives the mail exchangers' names by preference, shuffled among
// equal preferences so that load spreads as the domain asks (RFC 5321
// §5.1); a "." among other records is no host and is left out.
func mxOrder(mxs []*net.MX) []string {
	mxs = slices.Clone(mxs)
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		if h := normName(mx.Host); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// lookupHosts turns mail exchanger names into targets, every address of
// each (A and AAAA) in turn, at the relay port. A host without addresses
// is skipped; when none has any, the failure is temporary if any lookup
// failed temporarily, else the domain is not found.
func (r *Resolver) lookupHosts(ctx context.Context, d string, hosts []string) ([]Target, error) {
	port := r.Port
	if port == 0 {
		port = smtpPort
	}
	var ts []Target
	var last error
	temporary := false
	for _, h := range hosts {
		ips, err := r.net().LookupNetIP(ctx, "ip", rooted(h))
		if err != nil {
			last, temporary = err, temporary || !isNotFound(err)
			continue
		}
		for _, ip := range ips {
			ts = append(ts, Target{Host: h, Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()})
		}
	}
	if len(ts) == 0 {
		return nil, &ResolveError{Domain: d, NotFound: !temporary, Err: last}
	}
	return ts, nil
}

// rooted is name as an absolute DNS name (a trailing dot), so that the
// resolver's search list is never appended to it; an IP literal (an MX
// some sites publish) is left as it is.
func rooted(name string) string {
	if _, err := netip.ParseAddr(name); err == nil {
		return name
	}
	return name + "."
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
