package config

import (
	"sort"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogFields are the effective settings as log fields, for the one line a
// daemon logs at start; durations are written as in the file. Accounts appear by address only: passwords (plain
// or hashed) never reach the log.
func (c *Config) LogFields() []zap.Field {
	s := c.Settings
	return []zap.Field{
		zap.Array("servers", serverList(c.Servers)),
		zap.Int("mx_records", len(c.MX)), zap.Int("p_records", len(c.P)),
		zap.String("data_dir", s.DataDir), zap.String("control_socket", s.ControlPath()), zap.String("listen", s.Listen),
		zap.String("resolver", s.Resolver), zap.Strings("dns_servers", s.DNSServers), zap.Int("relay_port", s.RelayPort),
		zap.Strings("trusted_networks", s.TrustedNetworks),
		zap.Int64("max_message_size", s.MaxMessageSize), zap.Int("max_recipients", s.MaxRecipients),
		zap.Int("max_errors", s.MaxErrors),
		zap.Stringer("command_timeout", s.CommandTimeout),
		zap.Stringer("pop3_timeout", s.POP3Timeout),
		zap.Stringer("session_timeout", s.SessionTimeout),
		zap.Int("queue_workers", s.QueueWorkers), zap.Int("max_queue", s.MaxQueue),
		zap.Strings("retry", durationStrings(s.Retry)), zap.Bool("retry_explicit", s.ExplicitRetry()),
		zap.Stringer("retry_base", s.RetryBase), zap.Stringer("retry_max", s.RetryMax),
		zap.Stringer("max_queue_lifetime", s.MaxQueueLifetime), zap.Stringer("delay_warning", s.DelayWarning),
		zap.Int("max_relay_connections", s.MaxRelayConnections),
		zap.Int("relay_concurrency", s.RelayConcurrency), zap.Stringer("relay_backoff", s.RelayBackoff),
		zap.Bool("tls", s.TLSCert != "" || s.TLSSelfSigned), zap.String("tls_cert", s.TLSCert),
		zap.Bool("tls_self_signed", s.TLSSelfSigned), zap.Any("implicit_tls", s.ImplicitTLS),
		zap.Stringer("tls_policy", s.TLSPolicy),
		zap.String("plaintext_auth", s.PlaintextAuth), zap.String("log_level", s.LogLevel),
		zap.Int("max_connections", s.MaxConnections), zap.Int("max_connections_per_ip", s.MaxConnectionsPerIP),
		zap.Int("auth_failures", s.AuthFailures),
		zap.Stringer("auth_window", s.AuthWindow),
		zap.Stringer("auth_delay", s.AuthDelay),
		zap.String("metrics_listen", s.MetricsListen),
	}
}

// durationStrings writes durations as the file does ("5m0s" for "5m").
func durationStrings(ds []Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// serverList logs the mail hosts with their ports, domains, postmaster and
// account addresses; never a password.
type serverList []*Server

func (l serverList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range l {
		if err := enc.AppendObject(logServer{s}); err != nil {
			return err
		}
	}
	return nil
}

type logServer struct{ s *Server }

func (l logServer) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	s := l.s
	enc.AddString("name", s.Name)
	enc.AddInt("smtp_port", s.SMTPPort)
	enc.AddInt("pop3_port", s.POPPort)
	accounts := make([]string, 0, len(s.Accounts))
	for a := range s.Accounts {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	if err := enc.AddArray("accounts", zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
		for _, a := range accounts {
			ae.AppendString(a)
		}
		return nil
	})); err != nil {
		return err
	}
	if err := enc.AddArray("domains", zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
		for _, d := range s.Domains {
			ae.AppendString(d)
		}
		return nil
	})); err != nil {
		return err
	}
	enc.AddString("postmaster", s.Postmaster)
	return nil
}
