// Package mta owns gomta's configuration (the course's schema plus gomta's own
// [gomta] table: defaults in code, then the file, then validation that reports
// every problem at once) and the wiring that turns a config into running mail
// hosts: listeners, queue, delivery workers and mailbox actors, handed to the
// caller's run group as actors. It also holds the relay policy (who may send
// what, DESIGN.md; postmaster mail, RFC 5321 §4.5.1) that the SMTP sessions
// ask through their Backend, and the canonical form in which recipients are
// queued, once per mailbox.
package mta

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"gomta/configs"
	"gomta/delivery"
)

// Config is the effective configuration of a gomta process.
type Config struct {
	// Agents maps a mail domain to the SMTP and POP3 host names its agent uses
	// ([agent] table); the names resolve through P.
	Agents map[string]AgentHosts
	// Servers are the mail hosts of [server], sorted by name.
	Servers []*Server
	// MX maps a mail domain to its mail exchanger's host name, P a host name to
	// "port" (on localhost) or "host:port". Keys and values are lower-case
	// without the trailing dot of the course's files.
	MX, P map[string]string
	Settings
}

// AgentHosts is one [agent] entry.
type AgentHosts struct {
	SMTP string `toml:"smtp"`
	POP  string `toml:"pop"`
}

// Server is one mail host of [server] with its accounts.
type Server struct {
	Name     string
	SMTPPort int
	POPPort  int
	// Accounts maps an address to its password, as written in the file.
	Accounts map[string]string
	// Domains are the mail domains this host is final destination for: the
	// domains of its accounts, plus [gomta.domains."<server>"].
	Domains []string
	// Postmaster is the account (as configured) that receives mail for
	// <Postmaster> and postmaster@ each local domain (RFC 5321 §4.5.1):
	// [gomta.postmaster."<server>"], by default the host's account whose
	// local part is "postmaster", else its first account in file order;
	// "" when the host has no account.
	Postmaster string
}

// Settings are gomta's own options ([gomta] table); field comments document them.
type Settings struct {
	DataDir         string     `toml:"data_dir"`         // spool and Maildirs; a subfolder per host
	Listen          string     `toml:"listen"`           // IP address the listeners bind to
	Resolver        string     `toml:"resolver"`         // "fdns" (tables only) or "dns" (real DNS MX as fallback)
	TrustedNetworks []string   `toml:"trusted_networks"` // CIDRs allowed to submit for local senders without AUTH
	MaxMessageSize  int64      `toml:"max_message_size"` // octets; 552 5.3.4 beyond
	MaxRecipients   int        `toml:"max_recipients"`   // per message; 452 4.5.3 beyond
	MaxErrors       int        `toml:"max_errors"`       // per session before 421 4.7.0
	CommandTimeout  Duration   `toml:"command_timeout"`  // SMTP idle wait for a command
	POP3Timeout     Duration   `toml:"pop3_timeout"`     // POP3 autologout
	QueueWorkers    int        `toml:"queue_workers"`    // concurrent delivery attempts per host
	MaxQueue        int        `toml:"max_queue"`        // spooled messages per host; 452 4.3.1 beyond; -1 unlimited
	Retry           []Duration `toml:"retry"`            // waits before attempts 2, 3, ...
	// MaxRelayConnections bounds a host's outbound SMTP transactions in
	// progress at once, across all its delivery attempts.
	MaxRelayConnections int `toml:"max_relay_connections"`
	// ExtraDomains adds final-destination domains to a host: server name → domains.
	ExtraDomains map[string][]string `toml:"domains"`
	// Postmasters names the account that receives a host's postmaster mail
	// (RFC 5321 §4.5.1): server name → one of its accounts. Default: the
	// account named postmaster@..., else the host's first account.
	Postmasters map[string]string `toml:"postmaster"`

	// TLS. With a certificate (tls_cert + tls_key, PEM files) or
	// tls_self_signed = true (a pair made in memory at start, for local use),
	// SMTP offers STARTTLS, POP3 offers STLS, and the relay uses STARTTLS
	// when the next MTA offers it.
	TLSCert       string `toml:"tls_cert"`
	TLSKey        string `toml:"tls_key"`
	TLSSelfSigned bool   `toml:"tls_self_signed"`
	// ImplicitTLS adds implicit-TLS listeners (submissions, pop3s; RFC 8314):
	// server name → ports.
	ImplicitTLS map[string]TLSPorts `toml:"implicit_tls"`
	// PlaintextAuth says where SMTP AUTH and POP3 USER/PASS/AUTH are allowed
	// without TLS: "trusted" (trusted networks only), "always" or "never".
	PlaintextAuth string `toml:"plaintext_auth"`

	// Limits; 0 switches a limit off.
	MaxConnections      int      `toml:"max_connections"`        // per host (SMTP + POP3); 421 4.7.0 beyond
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"` // per client IP; trusted networks exempt
	AuthFailures        int      `toml:"auth_failures"`          // failed logins per IP and per account before lock-out
	AuthWindow          Duration `toml:"auth_window"`            // how long failures count
	AuthDelay           Duration `toml:"auth_delay"`             // delay after a failure, doubling
	SessionTimeout      Duration `toml:"session_timeout"`        // whole SMTP session; 421 4.4.2 beyond

	trusted []netip.Prefix
}

// TLSPorts are a server's implicit-TLS ports; 0 = none.
type TLSPorts struct {
	SMTP int `toml:"smtp"`
	POP  int `toml:"pop"`
}

// Duration is a time.Duration written as "5m" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// DefaultSettings are the values used for anything the file does not set.
func DefaultSettings() Settings {
	return Settings{
		DataDir:             "./var",
		Listen:              "127.0.0.1",
		Resolver:            "fdns",
		TrustedNetworks:     []string{"127.0.0.0/8", "::1/128"},
		MaxMessageSize:      32 << 20,
		MaxRecipients:       100,
		MaxErrors:           10,
		CommandTimeout:      Duration(5 * time.Minute),
		POP3Timeout:         Duration(10 * time.Minute),
		QueueWorkers:        16,
		MaxQueue:            100000,
		MaxRelayConnections: delivery.DefaultMaxRelay,
		Retry: []Duration{Duration(time.Second), Duration(5 * time.Second), Duration(30 * time.Second),
			Duration(2 * time.Minute), Duration(10 * time.Minute), Duration(30 * time.Minute),
			Duration(time.Hour), Duration(2 * time.Hour), Duration(4 * time.Hour)},
		PlaintextAuth:       "trusted",
		MaxConnections:      20000,
		MaxConnectionsPerIP: 50,
		AuthFailures:        10,
		AuthWindow:          Duration(15 * time.Minute),
		AuthDelay:           Duration(250 * time.Millisecond),
		SessionTimeout:      Duration(30 * time.Minute),
	}
}

// flexString accepts a TOML string or integer (ports are written both ways).
type flexString string

func (f *flexString) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*f = flexString(x)
	case int64:
		*f = flexString(strconv.FormatInt(x, 10))
	default:
		return fmt.Errorf("want a string or an integer, got %T", v)
	}
	return nil
}

type serverEntry struct {
	SMTP flexString `toml:"smtp"`
	POP  flexString `toml:"pop"`
}

type fileFormat struct {
	Agent    map[string]AgentHosts        `toml:"agent"`
	Server   map[string]serverEntry       `toml:"server"`
	Accounts map[string]map[string]string `toml:"accounts"`
	MX       map[string]flexString        `toml:"MX"`
	P        map[string]flexString        `toml:"P"`
	Gomta    *Settings                    `toml:"gomta"`
}

// Load reads a config in the course's schema (configPath "" = the built-in
// default) and an optional fake DNS file whose [MX]/[P] entries are added to
// (and override) those of the config. Every problem found is reported.
func Load(configPath, fdnsPath string) (*Config, error) {
	data, name := configs.Default, "built-in default config"
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		data, name = b, configPath
	}
	var fdns []byte
	if fdnsPath != "" {
		b, err := os.ReadFile(fdnsPath)
		if err != nil {
			return nil, fmt.Errorf("fdns: %w", err)
		}
		fdns = b
	}
	return Parse(name, data, fdnsPath, fdns)
}

// Parse is Load on bytes; names are used in messages.
func Parse(name string, data []byte, fdnsName string, fdns []byte) (*Config, error) {
	var f fileFormat
	settings := DefaultSettings()
	f.Gomta = &settings
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var problems []error
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "gomta" {
			problems = append(problems, fmt.Errorf("%s: unknown setting %s", name, k))
		}
	}
	cfg := &Config{Agents: map[string]AgentHosts{}, MX: map[string]string{}, P: map[string]string{}, Settings: *f.Gomta}
	addDNS := func(src string, mx, p map[string]flexString) {
		for k, v := range mx {
			cfg.MX[normHost(k)] = normHost(string(v))
		}
		for k, v := range p {
			cfg.P[normHost(k)] = strings.TrimSpace(string(v))
		}
	}
	addDNS(name, f.MX, f.P)
	if fdns != nil {
		var d fileFormat
		if _, err := toml.Decode(string(fdns), &d); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", fdnsName, err))
		}
		addDNS(fdnsName, d.MX, d.P)
	}
	for dom, h := range f.Agent {
		cfg.Agents[strings.ToLower(dom)] = AgentHosts{SMTP: normHost(h.SMTP), POP: normHost(h.POP)}
	}
	problems = append(problems, cfg.buildServers(name, &f, accountOrder(md))...)
	problems = append(problems, cfg.validate(name)...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return cfg, nil
}

// accountOrder lists each server's account addresses in file order (a TOML
// table decodes into an unordered map).
func accountOrder(md toml.MetaData) map[string][]string {
	order := map[string][]string{}
	for _, k := range md.Keys() {
		if len(k) == 3 && k[0] == "accounts" {
			order[k[1]] = append(order[k[1]], k[2])
		}
	}
	return order
}

func (c *Config) buildServers(name string, f *fileFormat, order map[string][]string) []error {
	var problems []error
	for sname, e := range f.Server {
		s := &Server{Name: sname, Accounts: map[string]string{}}
		var err error
		if s.SMTPPort, err = parsePort(string(e.SMTP)); err != nil {
			problems = append(problems, fmt.Errorf("%s: [server] %q smtp: %w", name, sname, err))
		}
		if s.POPPort, err = parsePort(string(e.POP)); err != nil {
			problems = append(problems, fmt.Errorf("%s: [server] %q pop: %w", name, sname, err))
		}
		doms := map[string]bool{}
		for addr, pass := range f.Accounts[sname] {
			at := strings.LastIndexByte(addr, '@')
			if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " \t<>\x00/\\") {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q is not an address local@domain", name, sname, addr))
				continue
			}
			if pass == "" {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q has an empty password", name, sname, addr))
			}
			if strings.HasPrefix(pass, "$2") && !isBcrypt(pass) {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q: password looks like a bcrypt hash but is not a valid one", name, sname, addr))
			}
			s.Accounts[addr] = pass
			doms[strings.ToLower(addr[at+1:])] = true
		}
		for _, d := range c.ExtraDomains[sname] {
			doms[strings.ToLower(d)] = true
		}
		for d := range doms {
			s.Domains = append(s.Domains, d)
		}
		sort.Strings(s.Domains)
		if err := c.setPostmaster(s, order[sname]); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
		}
		c.Servers = append(c.Servers, s)
	}
	for sname := range f.Accounts {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [accounts.%q] names no server of [server]", name, sname))
		}
	}
	for sname := range c.ExtraDomains {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [gomta.domains] %q names no server of [server]", name, sname))
		}
	}
	for sname := range c.Postmasters {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [gomta.postmaster] %q names no server of [server]", name, sname))
		}
	}
	sort.Slice(c.Servers, func(i, j int) bool { return c.Servers[i].Name < c.Servers[j].Name })
	return problems
}

// setPostmaster chooses s.Postmaster: the configured account, or the account
// whose local part is "postmaster", or the first account in file order
// (order, then any account it missed, sorted).
func (c *Config) setPostmaster(s *Server, order []string) error {
	if want, ok := c.Postmasters[s.Name]; ok {
		for a := range s.Accounts {
			if strings.EqualFold(a, want) {
				s.Postmaster = a
				return nil
			}
		}
		return fmt.Errorf("[gomta.postmaster] %q = %q is not an account of that server", s.Name, want)
	}
	rest := make([]string, 0, len(s.Accounts))
	for a := range s.Accounts {
		if !slices.Contains(order, a) {
			rest = append(rest, a)
		}
	}
	sort.Strings(rest)
	all := append(slices.Clip(order), rest...)
	for _, a := range all {
		if _, ok := s.Accounts[a]; ok && strings.EqualFold(a[:strings.LastIndexByte(a, '@')], "postmaster") {
			s.Postmaster = a
			return nil
		}
	}
	for _, a := range all {
		if _, ok := s.Accounts[a]; ok {
			s.Postmaster = a
			return nil
		}
	}
	return nil
}

func (c *Config) validate(name string) []error {
	var problems []error
	bad := func(format string, a ...any) {
		problems = append(problems, fmt.Errorf("%s: "+format, append([]any{name}, a...)...))
	}
	if len(c.Servers) == 0 {
		bad("[server] lists no mail host")
	}
	ports := map[int]string{}
	for _, s := range c.Servers {
		for _, p := range []struct {
			port  int
			proto string
		}{{s.SMTPPort, "smtp"}, {s.POPPort, "pop"}} {
			if p.port == 0 {
				continue
			}
			if other, dup := ports[p.port]; dup {
				bad("port %d is used twice (%s and %s %s)", p.port, other, s.Name, p.proto)
			}
			ports[p.port] = s.Name + " " + p.proto
		}
	}
	domainOwner := map[string]string{}
	for _, s := range c.Servers {
		for _, d := range s.Domains {
			if o, dup := domainOwner[d]; dup {
				bad("domain %s has accounts on two servers (%s and %s)", d, o, s.Name)
			}
			domainOwner[d] = s.Name
		}
	}
	for _, k := range sortedKeys(c.P) {
		if _, err := splitHostPort(c.P[k]); err != nil {
			bad("[P] %q = %q: %v", k, c.P[k], err)
		}
	}
	// With the fake DNS only, a mail exchanger without a port record would
	// bounce every message for its domain; the agent finds its servers
	// through [P] too (or takes a literal host:port).
	if c.Resolver == "fdns" {
		for _, d := range sortedKeys(c.MX) {
			if _, ok := c.P[c.MX[d]]; !ok {
				bad("[MX] %q = %q: the mail exchanger has no [P] entry", d, c.MX[d])
			}
		}
	}
	for _, d := range sortedKeys(c.Agents) {
		for _, h := range []struct{ proto, host string }{{"smtp", c.Agents[d].SMTP}, {"pop", c.Agents[d].POP}} {
			if _, ok := c.P[h.host]; !ok && h.host != "" && !isHostPort(h.host) {
				bad("[agent] %q %s = %q has no [P] entry", d, h.proto, h.host)
			}
		}
	}
	if c.DataDir == "" {
		bad("[gomta] data_dir is empty")
	}
	if net.ParseIP(c.Listen) == nil {
		bad("[gomta] listen %q is not an IP address", c.Listen)
	}
	if c.Resolver != "fdns" && c.Resolver != "dns" {
		bad("[gomta] resolver %q: want \"fdns\" or \"dns\"", c.Resolver)
	}
	c.trusted = c.trusted[:0]
	for _, n := range c.TrustedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			bad("[gomta] trusted_networks %q: %v", n, err)
			continue
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	if c.MaxMessageSize <= 0 {
		bad("[gomta] max_message_size must be positive")
	}
	if c.MaxRecipients <= 0 {
		bad("[gomta] max_recipients must be positive")
	}
	if c.MaxErrors <= 0 {
		bad("[gomta] max_errors must be positive")
	}
	if c.QueueWorkers <= 0 {
		bad("[gomta] queue_workers must be positive")
	}
	if c.MaxRelayConnections <= 0 {
		bad("[gomta] max_relay_connections must be positive")
	}
	if c.MaxQueue == 0 || c.MaxQueue < -1 {
		bad("[gomta] max_queue must be positive, or -1 for unlimited")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("[gomta] tls_cert and tls_key go together")
	}
	switch c.PlaintextAuth {
	case "trusted", "always", "never":
	default:
		bad("[gomta] plaintext_auth %q: want \"trusted\", \"always\" or \"never\"", c.PlaintextAuth)
	}
	for name, p := range c.ImplicitTLS {
		if c.Server(name) == nil {
			bad("[gomta.implicit_tls] %q names no server of [server]", name)
		}
		for _, port := range []int{p.SMTP, p.POP} {
			if port < 0 || port > 65535 {
				bad("[gomta.implicit_tls.%q] port %d out of range", name, port)
			}
		}
		if (p.SMTP != 0 || p.POP != 0) && c.TLSCert == "" && !c.TLSSelfSigned {
			bad("[gomta.implicit_tls.%q] needs tls_cert/tls_key or tls_self_signed", name)
		}
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max_connections", c.MaxConnections}, {"max_connections_per_ip", c.MaxConnectionsPerIP}, {"auth_failures", c.AuthFailures}} {
		if v.n < 0 {
			bad("[gomta] %s must be 0 (off) or positive", v.name)
		}
	}
	return problems
}

// Server returns the named mail host, or nil.
func (c *Config) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Trusted reports whether addr is inside a trusted network.
func (c *Config) Trusted(addr net.Addr) bool {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	for _, p := range c.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ResolveHost turns a host name into a dialable "host:port" through the P
// table: a bare port means localhost.
func (c *Config) ResolveHost(name string) (string, error) {
	v, ok := c.P[normHost(name)]
	if !ok {
		return "", fmt.Errorf("fake DNS: no [P] record for %q", name)
	}
	return splitHostPort(v)
}

func splitHostPort(v string) (string, error) {
	if p, err := parsePort(v); err == nil {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
	}
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("want a port or host:port")
	}
	if _, err := parsePort(p); err != nil || h == "" {
		return "", fmt.Errorf("want a port or host:port")
	}
	return v, nil
}

// isHostPort reports whether v is a literal "host:port".
func isHostPort(v string) bool {
	h, p, err := net.SplitHostPort(v)
	if err != nil || h == "" {
		return false
	}
	_, err = parsePort(p)
	return err == nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return p, nil
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
