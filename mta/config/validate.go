package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// problems collects what is wrong with a config, each prefixed with the
// file's name, so that one error lists them all.
type problems struct {
	name string
	errs []error
}

func (p *problems) add(format string, a ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: "+format, append([]any{p.name}, a...)...))
}

// validate checks what parsing could not, reporting every problem; on the
// way it parses the [P] values into addresses and TrustedNetworks into
// prefixes, so that the rest of gomta reads them parsed.
func (c *Config) validate(name string) []error {
	p := &problems{name: name}
	c.validateServers(p)
	c.validateDNS(p)
	c.validateResolver(p)
	c.validateSettings(p)
	c.validateTLS(p)
	c.validateTLSPolicy(p)
	c.validateCluster(p)
	return p.errs
}

// validateServers checks that there is a mail host, that no port serves two
// listeners and that each domain has its accounts on one host only.
func (c *Config) validateServers(p *problems) {
	if len(c.Servers) == 0 {
		p.add("[server] lists no mail host")
	}
	ports := map[int]string{}
	for _, s := range c.Servers {
		for _, l := range []struct {
			port  int
			proto string
		}{{s.SMTPPort, "smtp"}, {s.POPPort, "pop"}} {
			if l.port == 0 {
				continue
			}
			if other, dup := ports[l.port]; dup {
				p.add("port %d is used twice (%s and %s %s)", l.port, other, s.Name, l.proto)
			}
			ports[l.port] = s.Name + " " + l.proto
		}
	}
	domainOwner := map[string]string{}
	for _, s := range c.Servers {
		for _, d := range s.Domains {
			if o, dup := domainOwner[d]; dup {
				p.add("domain %s has accounts on two servers (%s and %s)", d, o, s.Name)
			}
			domainOwner[d] = s.Name
		}
	}
}

// validateDNS parses the [P] values in place (the one place they are
// parsed) and checks that the names MX and [agent] use can be reached.
func (c *Config) validateDNS(p *problems) {
	for _, k := range sortedKeys(c.P) {
		addr, err := ParseAddr(c.P[k])
		if err != nil {
			// The entry stays as written (the config is rejected anyway), so
			// that an MX naming it is not reported a second time.
			p.add("[P] %q = %q: %v", k, c.P[k], err)
			continue
		}
		c.P[k] = addr
	}
	// With the fake DNS only, a mail exchanger without a port record would
	// bounce every message for its domain; the agent finds its servers
	// through [P] too (or takes a literal host:port).
	if c.Resolver == "fdns" {
		for _, d := range sortedKeys(c.MX) {
			if _, ok := c.P[c.MX[d]]; !ok {
				p.add("[MX] %q = %q: the mail exchanger has no [P] entry", d, c.MX[d])
			}
		}
	}
	for _, d := range sortedKeys(c.Agents) {
		for _, h := range []struct{ proto, host string }{{"smtp", c.Agents[d].SMTP}, {"pop", c.Agents[d].POP}} {
			if _, ok := c.P[h.host]; !ok && h.host != "" && !IsHostPort(h.host) {
				p.add("[agent] %q %s = %q has no [P] entry", d, h.proto, h.host)
			}
		}
	}
}

// validateSettings checks the [gomta] table's values apart from TLS, and
// parses trusted_networks.
func (c *Config) validateSettings(p *problems) {
	if c.DataDir == "" {
		p.add("[gomta] data_dir is empty")
	}
	if path := c.ControlPath(); len(path) > maxSocketPath {
		p.add("[gomta] control_socket %q: %d octets, a Unix socket path takes at most %d", path, len(path), maxSocketPath)
	}
	if net.ParseIP(c.Listen) == nil {
		p.add("[gomta] listen %q is not an IP address", c.Listen)
	}
	c.trusted = c.trusted[:0]
	for _, n := range c.TrustedNetworks {
		prefix, err := netip.ParsePrefix(n)
		if err != nil {
			p.add("[gomta] trusted_networks %q: %v", n, err)
			continue
		}
		c.trusted = append(c.trusted, prefix.Masked())
	}
	for _, v := range []struct {
		name string
		ok   bool
	}{
		{"max_message_size must be 0 (off) or positive", c.MaxMessageSize >= 0},
		{"max_recipients must be 0 (off) or positive", c.MaxRecipients >= 0},
		{"max_errors must be 0 (off) or positive", c.MaxErrors >= 0},
		{"queue_workers must be positive", c.QueueWorkers > 0},
		{"max_relay_connections must be positive", c.MaxRelayConnections > 0},
		{"relay_concurrency must be positive", c.RelayConcurrency > 0},
		{"relay_backoff must be positive", c.RelayBackoff > 0},
		{"max_queue must be positive, or -1 for unlimited", c.MaxQueue > 0 || c.MaxQueue == -1},
		{"max_connections must be 0 (off) or positive", c.MaxConnections >= 0},
		{"max_connections_per_ip must be 0 (off) or positive", c.MaxConnectionsPerIP >= 0},
		{"auth_failures must be 0 (off) or positive", c.AuthFailures >= 0},
		{"max_queue_lifetime must be positive", c.MaxQueueLifetime > 0},
		{"retry_base must be positive", c.RetryBase > 0},
		{"retry_max must not be below retry_base", c.RetryMax >= c.RetryBase},
		{"delay_warning must be shorter than max_queue_lifetime, or 0 (off)", c.DelayWarning < c.MaxQueueLifetime},
	} {
		if !v.ok {
			p.add("[gomta] %s", v.name)
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		p.add("[gomta] log_level %q: want \"debug\", \"info\", \"warn\" or \"error\"", c.LogLevel)
	}
	if c.MetricsListen != "" {
		if err := CheckMetricsListen(c.MetricsListen); err != nil {
			p.add("[gomta] metrics_listen: %v", err)
		}
	}
	switch c.PlaintextAuth {
	case "trusted", "always", "never":
	default:
		p.add("[gomta] plaintext_auth %q: want \"trusted\", \"always\" or \"never\"", c.PlaintextAuth)
	}
}

// validateTLS checks the certificate settings and the implicit-TLS ports.
func (c *Config) validateTLS(p *problems) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p.add("[gomta] tls_cert and tls_key go together")
	}
	for _, name := range sortedKeys(c.ImplicitTLS) {
		tp := c.ImplicitTLS[name]
		if c.Server(name) == nil {
			p.add("[gomta.implicit_tls] %q names no server of [server]", name)
		}
		for _, port := range []int{tp.SMTP, tp.POP} {
			if port < 0 || port > 65535 {
				p.add("[gomta.implicit_tls.%q] port %d out of range", name, port)
			}
		}
		if (tp.SMTP != 0 || tp.POP != 0) && c.TLSCert == "" && !c.TLSSelfSigned {
			p.add("[gomta.implicit_tls.%q] needs tls_cert/tls_key or tls_self_signed", name)
		}
	}
}

// validateResolver checks resolver, dns_servers and relay_port, and writes
// each DNS server as "ip:port".
func (c *Config) validateResolver(p *problems) {
	if c.Resolver != "fdns" && c.Resolver != "dns" {
		p.add("[gomta] resolver %q: want \"fdns\" or \"dns\"", c.Resolver)
	}
	if len(c.DNSServers) > 0 && c.Resolver != "dns" {
		p.add("[gomta] dns_servers is set but resolver is not \"dns\"")
	}
	for i, s := range c.DNSServers {
		addr, err := parseDNSServer(s)
		if err != nil {
			p.add("[gomta] dns_servers %q: %v", s, err)
			continue
		}
		c.DNSServers[i] = addr
	}
	if c.RelayPort < 1 || c.RelayPort > 65535 {
		p.add("[gomta] relay_port %d: want a port (1-65535)", c.RelayPort)
	}
}

// parseDNSServer parses a name server as "ip" (port 53, RFC 1035 §4.2) or
// "ip:port" ("[ip6]:port"): a name would itself need a resolver.
func parseDNSServer(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", errors.New("want an IP address or ip:port")
	}
	return ap.String(), nil
}
