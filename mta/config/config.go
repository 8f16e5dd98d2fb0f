// Package config owns gomta's configuration: the course's schema ([agent],
// [server], [accounts."<server>"], and the fake DNS tables [MX] and [P]) plus
// gomta's own [gomta] table. A config is built in one order: defaults in code
// (DefaultSettings), then the file, then validation that reports every
// problem at once (errors.Join).
//
// Invariants of a *Config returned by Load or Parse: it has at least one
// server; every [server] port is in 1-65535 and used once; every [P] value
// is a dialable "host:port"; names (MX keys and values, P keys, agent hosts)
// are lower-case without a trailing dot; TrustedNetworks are parsed
// (Trusted); DNSServers are "ip:port" and set only with resolver = "dns";
// RelayPort is a port; TLSPolicy keys are folded, each policy is
// opportunistic, require or verify, and a ca_file (verify only) has been
// read and holds a certificate (TLSPolicy.Roots).
//
// The package imports nothing of gomta but the embedded default config, so
// that the agent can read a config without linking the daemon's queue,
// mailboxes and servers.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the effective configuration of a gomta process.
type Config struct {
	// Agents maps a mail domain to the SMTP and POP3 host names its agent uses
	// ([agent] table); the names resolve through P.
	Agents map[string]AgentHosts
	// Servers are the mail hosts of [server], sorted by name.
	Servers []*Server
	// MX maps a mail domain to its mail exchanger's host name. Keys and
	// values are lower-case without the trailing dot of the course's files.
	MX map[string]string
	// P maps a host name (as MX keys) to the address its servers are dialled
	// at, "host:port", parsed once at load: the course's bare "port" is
	// 127.0.0.1:port, a "host:port" value is kept as written.
	P map[string]string
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
	// Accounts maps an address to its password, as written in the file. An
	// address may be UTF-8 ("张三@mail.sustech.edu.cn", a U-label domain):
	// such an account receives mail sent with SMTPUTF8 and logs in by its
	// UTF-8 name (SMTP AUTH, POP3 USER); it is looked up under
	// address.Account, so its domain may be written in U- or A-labels.
	Accounts map[string]string
	// Domains are the mail domains this host is final destination for: the
	// domains of its accounts, plus [gomta.domains."<server>"], folded
	// (address.FoldDomain: lower case, IDNA A-labels).
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
	DataDir string `toml:"data_dir"` // spool and Maildirs; a subfolder per host
	// ControlSocket is the Unix-domain socket mtactl talks to (mode 0600);
	// "" means control.sock in data_dir.
	ControlSocket string `toml:"control_socket"`
	Listen        string `toml:"listen"`   // IP address the listeners bind to
	Resolver      string `toml:"resolver"` // "fdns" (tables only) or "dns" (real DNS MX as fallback)
	// DNSServers are the name servers asked when resolver = "dns", "ip" or
	// "ip:port" (port 53 by default), instead of the system's
	// (/etc/resolv.conf); empty = the system's. Validation writes them as
	// "ip:port".
	DNSServers []string `toml:"dns_servers"`
	// RelayPort is the SMTP port dialled at the mail exchangers found
	// through DNS ([P] values carry their own): 25, or another port for
	// tests and for sites behind a port mapping.
	RelayPort       int        `toml:"relay_port"`
	TrustedNetworks []string   `toml:"trusted_networks"` // CIDRs allowed to submit for local senders without AUTH
	MaxMessageSize  int64      `toml:"max_message_size"` // octets; 552 5.3.4 beyond; 0 = no limit
	MaxRecipients   int        `toml:"max_recipients"`   // per message; 452 4.5.3 beyond; 0 = no limit
	MaxErrors       int        `toml:"max_errors"`       // per session before 421 4.7.0; 0 = no limit
	CommandTimeout  Duration   `toml:"command_timeout"`  // SMTP idle wait for a command
	POP3Timeout     Duration   `toml:"pop3_timeout"`     // POP3 autologout
	QueueWorkers    int        `toml:"queue_workers"`    // concurrent delivery attempts per host
	MaxQueue        int        `toml:"max_queue"`        // spooled messages per host; 452 4.3.1 beyond; -1 unlimited
	Retry           []Duration `toml:"retry"`            // explicit waits before attempts 2, 3, ... (see RetryBase)

	// The retry schedule. Without retry, the waits grow exponentially:
	// retry_base after the first attempt, doubling after each further
	// one, never more than retry_max. An explicit retry list wins over
	// retry_base and retry_max: its waits come before attempts 2, 3, ...
	// and the attempt after its last wait is final ([] = the first attempt
	// is final). Either way max_queue_lifetime ends it: the last attempt is
	// made when a message has been queued that long, and recipients still
	// failing temporarily then bounce with 5.4.7 and their last reply.
	RetryBase        Duration `toml:"retry_base"`         // first wait of the exponential schedule (Postfix minimal_backoff_time)
	RetryMax         Duration `toml:"retry_max"`          // longest wait of the exponential schedule (Postfix maximal_backoff_time)
	MaxQueueLifetime Duration `toml:"max_queue_lifetime"` // "5d"; as Postfix maximal_queue_lifetime
	// DelayWarning is the age after which the sender of a message still
	// being retried gets one delay notice (RFC 3464 Action: delayed); 0 =
	// none. It goes with the first attempt past that age.
	DelayWarning Duration `toml:"delay_warning"`
	retrySet     bool     // the file sets retry (even to [])
	// LogLevel is the daemon's log level (debug, info, warn, error); "" =
	// mtad's -log-level flag (info). The flag, when given, wins.
	LogLevel string `toml:"log_level"`
	// MaxRelayConnections bounds a host's outbound SMTP transactions in
	// progress at once, across all its delivery attempts.
	MaxRelayConnections int `toml:"max_relay_connections"`
	// RelayConcurrency bounds a host's connections to one mail exchanger
	// address at once, in use or kept idle for the next message, under
	// max_relay_connections (as Postfix's default_destination_concurrency_limit).
	RelayConcurrency int `toml:"relay_concurrency"`
	// RelayBackoff is how long a mail exchanger address that refused a
	// connection (connect failure, or a greeting other than 220) has its
	// messages deferred without being dialled.
	RelayBackoff Duration `toml:"relay_backoff"`
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
	// TLSPolicy is the relay's TLS policy per destination domain
	// ([gomta.tls_policy]): opportunistic (the default), require or
	// verify. A required TLS that fails defers the message, and bounces it
	// when max_queue_lifetime ends. It applies with or without tls_cert.
	TLSPolicy TLSPolicies `toml:"tls_policy"`
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

	// MetricsListen is where /metrics (Prometheus text format) is served,
	// "IP:PORT"; "" (the default) serves none. See CheckMetricsListen for
	// the addresses allowed.
	MetricsListen string `toml:"metrics_listen"`

	// Cluster ([gomta.cluster]) makes this process a node of a cluster on
	// NATS JetStream; nil (the default) keeps the local spool and Maildirs.
	Cluster *Cluster `toml:"cluster"`

	trusted []netip.Prefix
}

// TLSPorts are a server's implicit-TLS ports; 0 = none.
type TLSPorts struct {
	SMTP int `toml:"smtp"`
	POP  int `toml:"pop"`
}

// Duration is a time.Duration written as "5m" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration string, which may begin with a whole
// number of days ("5d", "1d12h"): queue lifetimes are counted in days.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return fmt.Errorf("time: invalid duration %q", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			s = "0s"
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 && days > 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	v += days
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// String writes d as Go does ("5m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// DefaultSettings are the values used for anything the file does not set.
func DefaultSettings() Settings {
	return Settings{
		DataDir:             "./var",
		Listen:              "127.0.0.1",
		Resolver:            "fdns",
		RelayPort:           25,
		TrustedNetworks:     []string{"127.0.0.0/8", "::1/128"},
		MaxMessageSize:      32 << 20,
		MaxRecipients:       100,
		MaxErrors:           10,
		CommandTimeout:      Duration(5 * time.Minute),
		POP3Timeout:         Duration(10 * time.Minute),
		QueueWorkers:        16,
		MaxQueue:            100000,
		MaxRelayConnections: 100,
		RelayConcurrency:    20,
		RelayBackoff:        Duration(30 * time.Second),
		// Postfix's defaults: 300 s doubling up to 4000 s, for 5 days (RFC
		// 5321 §4.5.4.1: give up after at least 4-5 days), a delay notice
		// after 4 hours.
		RetryBase:           Duration(5 * time.Minute),
		RetryMax:            Duration(4000 * time.Second),
		MaxQueueLifetime:    Duration(5 * 24 * time.Hour),
		DelayWarning:        Duration(4 * time.Hour),
		PlaintextAuth:       "trusted",
		MaxConnections:      20000,
		MaxConnectionsPerIP: 50,
		AuthFailures:        10,
		AuthWindow:          Duration(15 * time.Minute),
		AuthDelay:           Duration(250 * time.Millisecond),
		SessionTimeout:      Duration(30 * time.Minute),
	}
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

// ControlPath is the control socket's path: ControlSocket, or control.sock
// in DataDir.
func (s *Settings) ControlPath() string {
	if s.ControlSocket != "" {
		return s.ControlSocket
	}
	return filepath.Join(s.DataDir, "control.sock")
}

// maxSocketPath is the longest Unix-domain socket path Linux takes
// (sun_path is 108 octets with its terminating NUL; unix(7)).
const maxSocketPath = 107

// RetryWaits is the explicit retry list as the queue takes it, nil when
// there is none (then the exponential schedule of RetryBackoff applies).
func (s *Settings) RetryWaits() []time.Duration {
	if !s.ExplicitRetry() {
		return nil
	}
	out := make([]time.Duration, len(s.Retry))
	for i, d := range s.Retry {
		out[i] = time.Duration(d)
	}
	return out
}

// ExplicitRetry reports whether the retry list is set (in the file, even
// to [], or in code), which makes it win over retry_base and retry_max.
func (s *Settings) ExplicitRetry() bool { return s.retrySet || s.Retry != nil }

// RetryBackoff is the exponential schedule's first and longest waits as
// the queue takes them; zero when an explicit list wins.
func (s *Settings) RetryBackoff() (base, maxWait time.Duration) {
	if s.ExplicitRetry() {
		return 0, 0
	}
	return time.Duration(s.RetryBase), time.Duration(s.RetryMax)
}

// ResolveHost turns a host name into a dialable "host:port" through the P
// table.
func (c *Config) ResolveHost(name string) (string, error) {
	addr, ok := c.P[normHost(name)]
	if !ok {
		return "", fmt.Errorf("fake DNS: no [P] record for %q", name)
	}
	return addr, nil
}
