// Package limit owns the connection and login limits shared by gomta's SMTP and
// POP3 servers: how many connections in total and per client address, and how
// many failed logins per client address and per account before a temporary
// lock-out, with a growing delay after each failure. The servers' shared
// accept loop, which asks Limiter.Accept about each connection, is package
// session/serve.
//
// Failures are counted per client address and per account, the account
// under its canonical name (Config.Account: the folding of the servers'
// account lookup), so that no spelling of an address escapes its count. A
// login attempt takes its place in the count before its password is checked
// (BeginAuth) and gives it back only if the password was right or was never
// checked (Attempt), so that concurrent attempts never check more passwords
// than Config.AuthFailures allows.
//
// A Limiter is a shared service, safe for concurrent use (one mutex; it is not
// actor state). Its memory is bounded: live connection counts exist only while
// connections are open, and failure records expire after Config.AuthWindow and
// are capped at a fixed number of entries, the least recently touched being
// evicted first, so a flood of addresses or account names cannot grow it
// without bound. A nil *Limiter imposes no limits.
package limit

import (
	"container/list"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Errors from Accept. A server answers them with its temporary-refusal reply
// (SMTP 421 4.7.0, POP3 -ERR [SYS/TEMP]) and closes the connection.
var (
	ErrTooManyConns  = errors.New("limit: too many connections")
	ErrTooManyFromIP = errors.New("limit: too many connections from this address")
)

// Defaults and bounds.
const (
	// DefaultAuthWindow is how long failures are remembered and a lock-out
	// lasts when Config.AuthWindow is zero.
	DefaultAuthWindow = 15 * time.Minute
	// MaxAuthDelay caps the doubling delay after failed logins.
	MaxAuthDelay = 5 * time.Second
	// maxTracked caps the failure records (addresses and accounts together).
	maxTracked = 1 << 16
	// maxUserKey bounds the account name kept as a key.
	maxUserKey = 256
)

// Config sets the limits. Zero fields mean "no limit" except AuthWindow.
type Config struct {
	MaxConns      int           // connections in total; 0 = unlimited
	MaxConnsPerIP int           // per client IP (IPv6: per /64); 0 = unlimited
	AuthFailures  int           // failed logins per IP and per account before lock-out; 0 = no lock-out
	AuthWindow    time.Duration // how long failures are remembered / lock-out lasts; 0 = DefaultAuthWindow
	AuthDelay     time.Duration // base delay after a failure, doubling per failure up to MaxAuthDelay; 0 = none
	// ExemptPerIP, when set, names client addresses (e.g. trusted networks:
	// the site's own agents, load tests) that MaxConnsPerIP does not apply to,
	// as Postfix's smtpd_client_event_limit_exceptions. MaxConns still does.
	ExemptPerIP func(net.Addr) bool
	// Account, when set, maps a login name to the canonical account it
	// counts against: the same folding as the servers' account lookup, so
	// that "USER@Example.org" and "user@example.org" share one count. nil
	// counts each name as given.
	Account func(user string) string
}

// Limiter enforces a Config. Create it with New.
type Limiter struct {
	cfg Config
	now func() time.Time // the clock; replaced in tests
	cap int              // failure records kept at most

	mu    sync.Mutex
	total int
	perIP map[string]int // live connections per address key; no zero entries

	fails map[string]*list.Element // key → *failure in order
	order *list.List               // *failure, least recently touched first
}

// failure counts failed logins of one address or account.
type failure struct {
	key     string
	count   int       // failures, attempts still being checked included
	pending int       // of count, attempts still being checked (not settled)
	last    time.Time // time of the last failure
}

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = DefaultAuthWindow
	}
	return &Limiter{
		cfg:   cfg,
		now:   time.Now,
		cap:   maxTracked,
		perIP: make(map[string]int),
		fails: make(map[string]*list.Element),
		order: list.New(),
	}
}

// Reconfigure replaces the limits of cfg (MaxConns, MaxConnsPerIP,
// AuthFailures, AuthWindow, AuthDelay) while the Limiter is in use; the
// functions ExemptPerIP and Account stay those given to New. Connections
// open and failures counted are kept: a lower limit refuses new connections
// and logins until the counts fall under it, it never cuts one.
func (l *Limiter) Reconfigure(cfg Config) {
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = DefaultAuthWindow
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Field by field: userKey reads Account without the lock.
	l.cfg.MaxConns, l.cfg.MaxConnsPerIP = cfg.MaxConns, cfg.MaxConnsPerIP
	l.cfg.AuthFailures, l.cfg.AuthWindow, l.cfg.AuthDelay = cfg.AuthFailures, cfg.AuthWindow, cfg.AuthDelay
}

// Accept counts a new connection from remote. On success it returns release,
// to be called once when the connection ends (later calls do nothing). On
// refusal err is ErrTooManyConns or ErrTooManyFromIP and nothing is counted.
func (l *Limiter) Accept(remote net.Addr) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	key := ipKey(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConns > 0 && l.total >= l.cfg.MaxConns {
		return nil, ErrTooManyConns
	}
	if l.cfg.MaxConnsPerIP > 0 && l.perIP[key] >= l.cfg.MaxConnsPerIP &&
		(l.cfg.ExemptPerIP == nil || !l.cfg.ExemptPerIP(remote)) {
		return nil, ErrTooManyFromIP
	}
	l.total++
	l.perIP[key]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, nil
}

func (l *Limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[key]--; l.perIP[key] <= 0 {
		delete(l.perIP, key)
	}
}

// Attempt is one login attempt's place in the failure counts, taken by
// BeginAuth before the password is checked. Exactly one of Failed,
// Succeeded and Cancel settles it; later calls do nothing, so a deferred
// Cancel gives the place back on every path that did not settle it. A nil
// *Attempt (from a nil Limiter) does nothing.
type Attempt struct {
	l        *Limiter
	ip, user *failure // the records the place was taken in; user nil without an account
	settled  bool
}

// BeginAuth is asked before a password is checked. ok is false while the
// client address or the account is locked out: Config.AuthFailures failures,
// or attempts still being checked, within Config.AuthWindow. Otherwise the
// attempt is counted as a failure at once, so that concurrent attempts see
// it, and the server waits delay (honouring its context) before checking,
// then settles a. user may be empty when not known.
func (l *Limiter) BeginAuth(remote net.Addr, user string) (a *Attempt, delay time.Duration, ok bool) {
	if l == nil {
		return nil, 0, true
	}
	ipk, uk := ipKey(remote), l.userKey(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.expire(now)
	n, failed := l.count(ipk)
	if uk != "" {
		un, uf := l.count(uk)
		n, failed = max(n, un), max(failed, uf)
	}
	if l.cfg.AuthFailures > 0 && n >= l.cfg.AuthFailures {
		return nil, 0, false
	}
	a = &Attempt{l: l, ip: l.fail(ipk, now)}
	if uk != "" {
		a.user = l.fail(uk, now)
	}
	// The delay follows the failures, not the attempts still being checked:
	// counted in, concurrent logins from one address (a POP3 load, a mail
	// client with several connections) would wait ever longer after none
	// failed, each wait keeping the next attempts in flight.
	return a, backoff(l.cfg.AuthDelay, failed), true
}

// Failed settles a as a failed login: its place stays counted against the
// address and the account.
func (a *Attempt) Failed() {
	a.settle(func() {
		a.l.settled(a.ip)
		a.l.settled(a.user)
	})
}

// Succeeded settles a as a successful login: its place is given back to
// the address, and the account's failures are cleared (the address's
// expire on their own, so that a valid login cannot reset an address that
// is guessing other accounts' passwords).
func (a *Attempt) Succeeded() {
	a.settle(func() {
		a.l.unfail(a.ip)
		if a.user != nil {
			a.l.forget(a.user.key)
		}
	})
}

// Cancel settles a as a login whose password was not checked (the backend
// could not, the session ended during the delay): its place is given back.
func (a *Attempt) Cancel() {
	a.settle(func() {
		a.l.unfail(a.ip)
		a.l.unfail(a.user)
	})
}

func (a *Attempt) settle(f func()) {
	if a == nil {
		return
	}
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if !a.settled {
		a.settled = true
		f()
	}
}

// backoff is base doubled per failure after the first, capped at MaxAuthDelay.
func backoff(base time.Duration, failures int) time.Duration {
	if base <= 0 || failures <= 0 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < MaxAuthDelay; i++ { // bounded by the cap
		d *= 2
	}
	return min(d, MaxAuthDelay)
}

// count returns the failures remembered for key, attempts still being
// checked included (n), and without them (failed).
func (l *Limiter) count(key string) (n, failed int) {
	if e, ok := l.fails[key]; ok {
		f := e.Value.(*failure)
		return f.count, f.count - f.pending
	}
	return 0, 0
}

// current reports whether f is still the record of its key (not expired,
// evicted or replaced since it was counted in).
func (l *Limiter) current(f *failure) bool {
	if f == nil {
		return false
	}
	e, ok := l.fails[f.key]
	return ok && e.Value.(*failure) == f
}

// settled marks one attempt counted in f as checked: it stays a failure.
func (l *Limiter) settled(f *failure) {
	if l.current(f) && f.pending > 0 {
		f.pending--
	}
}

// fail adds one failure to key, as an attempt still being checked (pending),
// making it the most recently touched record and evicting the least
// recently touched beyond the cap. It returns the record counted in.
func (l *Limiter) fail(key string, now time.Time) *failure {
	if e, ok := l.fails[key]; ok {
		f := e.Value.(*failure)
		f.count++
		f.pending++
		f.last = now
		l.order.MoveToBack(e)
		return f
	}
	f := &failure{key: key, count: 1, pending: 1, last: now}
	l.fails[key] = l.order.PushBack(f)
	for l.order.Len() > l.cap { // bounded: at most one over
		l.forget(l.order.Front().Value.(*failure).key)
	}
	return f
}

// unfail takes back one failure counted in f, unless f has expired or been
// evicted meanwhile (a new record under the same key holds other
// failures). A record left with none is dropped.
func (l *Limiter) unfail(f *failure) {
	if !l.current(f) {
		return
	}
	if f.pending > 0 {
		f.pending--
	}
	if f.count--; f.count <= 0 {
		l.forget(f.key)
	}
}

func (l *Limiter) forget(key string) {
	if e, ok := l.fails[key]; ok {
		l.order.Remove(e)
		delete(l.fails, key)
	}
}

// expire drops the records whose last failure is older than the window. The
// order list is sorted by last failure, so this stops at the first live one.
func (l *Limiter) expire(now time.Time) {
	for e := l.order.Front(); e != nil; e = l.order.Front() { // bounded by the list
		f := e.Value.(*failure)
		if now.Sub(f.last) < l.cfg.AuthWindow {
			return
		}
		l.order.Remove(e)
		delete(l.fails, f.key)
	}
}

// ipKey is the address a client is counted under: the IPv4 address, or the
// /64 prefix of an IPv6 address (one end site usually holds a whole /64).
// An address that is not IP (a pipe, a Unix socket) is its String.
func ipKey(a net.Addr) string {
	if a == nil {
		return "ip:"
	}
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return "ip:" + a.String()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

// userKey is the account a failure is counted under: its canonical name
// (Config.Account), bounded in length; "" when user is empty.
func (l *Limiter) userKey(user string) string {
	if user == "" {
		return ""
	}
	if l.cfg.Account != nil {
		user = l.cfg.Account(user)
	}
	if len(user) > maxUserKey {
		user = user[:maxUserKey]
	}
	return "user:" + user
}
