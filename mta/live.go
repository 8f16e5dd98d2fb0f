package mta

import (
	"context"
	"net"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/delivery/relay"
	"gomta/mta/config"
	"gomta/session/address"
	"gomta/session/logvocab"
	"gomta/session/pop3"
	"gomta/session/smtp"
)

// hostConfig is what a host decides with its config: who its accounts and
// domains are and which settings its sessions get. It is never changed once
// built; a reload builds a new one and swaps it in (Host.live), so that a
// decision that loads it once sees one config, old or new, never a mix.
type hostConfig struct {
	cfg      *config.Config
	srv      *config.Server
	local    map[string]bool   // final-destination domains
	accounts map[string]string // address.Account(address) → address as configured
	hashed   bool              // some password is a bcrypt hash
}

func newHostConfig(cfg *config.Config, s *config.Server) *hostConfig {
	c := &hostConfig{cfg: cfg, srv: s, local: map[string]bool{}, accounts: map[string]string{}}
	for _, d := range s.Domains {
		c.local[d] = true
	}
	for a, pass := range s.Accounts {
		c.accounts[address.Account(a)] = a
		c.hashed = c.hashed || config.IsBcrypt(pass)
	}
	return c
}

func (c *hostConfig) isLocal(domain string) bool { return c.local[address.FoldDomain(domain)] }

func (c *hostConfig) account(addr string) (string, bool) {
	a, ok := c.accounts[address.Account(addr)]
	return a, ok
}

// users lists the account addresses as configured, sorted.
func (c *hostConfig) users() []string {
	out := make([]string, 0, len(c.accounts))
	for _, a := range c.accounts {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// limitOrOff turns a [gomta] limit where 0 means off into the SMTP server's.
func limitOrOff[T int | int64](v T) T {
	if v == 0 {
		return smtp.NoLimit
	}
	return v
}

// smtpConfig is the SMTP server's configuration for cfg. Its functions read
// the host's current config, so that they follow a reload by themselves.
func (h *Host) smtpConfig(cfg *config.Config) smtp.Config {
	return smtp.Config{
		Hostname: h.Name, MaxSize: limitOrOff(cfg.MaxMessageSize), MaxRcpts: limitOrOff(cfg.MaxRecipients),
		MaxErrors: limitOrOff(cfg.MaxErrors), CmdTimeout: time.Duration(cfg.CommandTimeout),
		SessionTimeout: time.Duration(cfg.SessionTimeout), Trusted: h.trusted, TLSConfig: h.tls,
		Auth: h.smtpAuth, AllowPlainAuth: h.allowPlain, Limiter: h.lim, Logger: h.log,
	}
}

// pop3Config is the POP3 server's configuration for cfg; log is the parent
// logger (the server adds the host field itself).
func (h *Host) pop3Config(cfg *config.Config, log *zap.Logger) pop3.Config {
	return pop3.Config{
		Hostname: h.Name, IdleTimeout: time.Duration(cfg.POP3Timeout), MaxErrors: limitOrOff(cfg.MaxErrors),
		TLSConfig: h.tls, AllowPlainAuth: h.allowPlain, Limiter: h.lim, Logger: log,
	}
}

// newRelay builds the host's outbound SMTP with the fake DNS tables of cfg
// and, with resolver = "dns", real DNS through cfg's name servers (the
// system's when none is set), dialling what it finds at relay_port.
func (h *Host) newRelay(cfg *config.Config) *relay.Relay {
	res := &relay.Resolver{MX: cfg.MX, P: cfg.P, DNS: cfg.Resolver == "dns",
		Net: relay.DNSClient(cfg.DNSServers), Port: cfg.RelayPort}
	return relay.New(res, relay.Options{LocalName: h.Name, Logger: h.log.With(zap.String(logvocab.Proto, logvocab.Relay)),
		TLS: relayTLS(h.tls), TLSPolicy: relayTLSPolicy(cfg.TLSPolicy),
		Self: selfAddrs([]net.Listener{h.smtpLn, h.smtpsLn}), Pool: h.pool})
}

// relayTLSPolicy is [gomta.tls_policy] as the relay reads it; a reload
// builds a new relay, and so a new policy, for the next attempts.
func relayTLSPolicy(ps config.TLSPolicies) *relay.TLSPolicy {
	if len(ps) == 0 {
		return nil
	}
	modes := map[string]relay.TLSMode{config.TLSOpportunistic: relay.TLSOpportunistic,
		config.TLSRequire: relay.TLSRequire, config.TLSVerify: relay.TLSVerify}
	domains := make(map[string]relay.DomainTLS, len(ps))
	for d, p := range ps {
		domains[d] = relay.DomainTLS{Mode: modes[p.Policy], Roots: p.Roots()}
	}
	return relay.NewTLSPolicy(domains)
}

// liveRelay is the delivery worker's Relayer: the current relay, which a
// reload replaces; a transaction in progress finishes on the one it began.
type liveRelay struct{ cur atomic.Pointer[relay.Relay] }

func (l *liveRelay) set(r *relay.Relay) { l.cur.Store(r) }

// Deliver implements delivery.Relayer.
func (l *liveRelay) Deliver(ctx context.Context, j relay.Job) relay.Outcome {
	return l.cur.Load().Deliver(ctx, j)
}

// apply makes cfg (with s, this host's part of it) the host's running
// config: new sessions, logins, deliveries and relay transactions use it;
// those in progress finish on the old one. The mailboxes of new accounts
// must exist already (prepare).
func (h *Host) apply(cfg *config.Config, s *config.Server) {
	h.live.Store(newHostConfig(cfg, s))
	h.lim.Reconfigure(limitConfig(cfg))
	h.smtp.Reconfigure(h.smtpConfig(cfg))
	h.pop3.Reconfigure(h.pop3Config(cfg, nil))
	h.relay.set(h.newRelay(cfg))
}

// prepare does what can fail before a reload applies s: a mailbox for each
// new account.
func (h *Host) prepare(s *config.Server) error {
	users := make([]string, 0, len(s.Accounts))
	for a := range s.Accounts {
		users = append(users, a)
	}
	return h.Mailboxes.Add(users)
}
