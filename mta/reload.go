package mta

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gomta/mta/config"
)

// Hosts are the running mail hosts of one mtad process, with what a reload
// needs: how to read the config again and the process-wide parts it may
// change (the TLS certificate, the log level). Reload is safe to call from
// any goroutine (SIGHUP, the control socket); reloads run one at a time.
type Hosts struct {
	list  []*Host
	load  func() (*config.Config, error)
	tls   *TLS
	level *zap.AtomicLevel
	log   *zap.Logger

	mu     sync.Mutex // one reload at a time; guards cfg and loaded
	cfg    *config.Config
	loaded time.Time
}

// HostsOptions are what NewHosts needs besides the hosts.
type HostsOptions struct {
	// Load reads the config files again, with the command line's overrides
	// (-n, -s, -p, -data) applied as at start.
	Load func() (*config.Config, error)
	// TLS is the process's certificate (nil: TLS is off).
	TLS *TLS
	// Level, when set, follows the config's log_level ("" = info); nil when
	// the command line fixed the level.
	Level  *zap.AtomicLevel
	Logger *zap.Logger
}

// NewHosts returns the Hosts of a process that runs hosts, built from cfg.
func NewHosts(cfg *config.Config, hosts []*Host, o HostsOptions) *Hosts {
	return &Hosts{list: hosts, load: o.Load, tls: o.TLS, level: o.Level, log: o.Logger, cfg: cfg, loaded: time.Now()}
}

// List returns the running hosts.
func (hs *Hosts) List() []*Host { return hs.list }

// Config returns the running config and when it was loaded.
func (hs *Hosts) Config() (*config.Config, time.Time) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.cfg, hs.loaded
}

// Reload reads the config files again and applies them: accounts and
// passwords, domains, postmasters, [MX] and [P], trusted networks, limits
// and timeouts, plaintext_auth, the TLS certificate and key files, and the
// log level. Sessions, logins and deliveries in progress finish under the
// old config; new ones get the new. A change that needs a restart (see
// config.NeedsRestart, ports, a host added or removed, TLS switched on or
// off) is reported and not applied. changes lists every difference found,
// one line each (config.Change), each also logged; no password appears.
//
// A new config that cannot be read or fails validation, or whose
// certificate cannot be loaded, is rejected whole: err lists every problem,
// each is logged, and the old config keeps serving.
func (hs *Hosts) Reload(ctx context.Context) (changes []string, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	next, err := hs.load()
	var cert *tls.Certificate
	if err == nil {
		cert, err = hs.prepare(next)
	}
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		hs.log.Error("reload rejected: the old config keeps serving", zap.Strings("problems", problems))
		return nil, err
	}
	diff := config.Diff(hs.cfg, next)
	next.KeepRunning(hs.cfg)
	for _, h := range hs.list {
		h.apply(next, next.Server(h.Name))
	}
	if cert != nil {
		hs.tls.cert.Store(cert)
	}
	if hs.level != nil {
		lvl, _ := zapcore.ParseLevel(next.LogLevel) // validated; "" is info
		hs.level.SetLevel(lvl)
	}
	hs.cfg, hs.loaded = next, time.Now()
	for _, c := range diff {
		changes = append(changes, c.String())
		f := []zap.Field{zap.String("key", c.Key), zap.String("old", c.Old), zap.String("new", c.New)}
		if c.Restart {
			hs.log.Warn("config change needs a restart: not applied", f...)
		} else {
			hs.log.Info("config changed", f...)
		}
	}
	hs.log.Info("config reloaded", zap.Int("changes", len(diff)))
	return changes, nil
}

// prepare does what can fail before next is applied, so that a failure
// leaves the running config whole: the certificate files are read (a
// renewed certificate under the same names counts), and new accounts get
// their mailboxes.
func (hs *Hosts) prepare(next *config.Config) (*tls.Certificate, error) {
	var cert *tls.Certificate
	if hs.tls != nil && next.TLSCert != "" {
		c, err := loadCert(next, hs.log)
		if err != nil {
			return nil, err
		}
		cert = &c
	}
	var errs []error
	for _, h := range hs.list {
		if s := next.Server(h.Name); s != nil {
			if err := h.prepare(s); err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", h.Name, err))
			}
		}
	}
	return cert, errors.Join(errs...)
}
