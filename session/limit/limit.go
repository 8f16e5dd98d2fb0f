// Package limit owns the connection and login limits shared by gomta's SMTP and
// POP3 servers: how many connections in total and per client address, and how
// many failed logins per client address and per account before a temporary
// lock-out, with a growing delay after each failure; and Accept, the servers'
// accept step that rides out a failing Accept (out of descriptors) with a
// bounded back-off instead of spinning or stopping.
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
	key   string
	count int
	last  time.Time // time of the last failure
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

// AuthAllowed is asked before a password is checked. ok is false while the
// client address or the account is locked out (Config.AuthFailures failures
// within Config.AuthWindow); otherwise the server waits delay (honouring its
// context) before checking. user may be empty when not known.
func (l *Limiter) AuthAllowed(remote net.Addr, user string) (delay time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.expire(now)
	n := l.count(ipKey(remote))
	if user != "" {
		n = max(n, l.count(userKey(user)))
	}
	if l.cfg.AuthFailures > 0 && n >= l.cfg.AuthFailures {
		return 0, false
	}
	return backoff(l.cfg.AuthDelay, n), true
}

// AuthResult records the outcome of a password check. A failure counts
// against the address and the account; a success clears the account's
// failures (the address's expire on their own, so that a valid login cannot
// reset an address that is guessing other accounts' passwords).
func (l *Limiter) AuthResult(remote net.Addr, user string, success bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.expire(now)
	if success {
		if user != "" {
			l.forget(userKey(user))
		}
		return
	}
	l.fail(ipKey(remote), now)
	if user != "" {
		l.fail(userKey(user), now)
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

// count returns the failures remembered for key.
func (l *Limiter) count(key string) int {
	if e, ok := l.fails[key]; ok {
		return e.Value.(*failure).count
	}
	return 0
}

// fail adds one failure to key, making it the most recently touched record
// and evicting the least recently touched beyond the cap.
func (l *Limiter) fail(key string, now time.Time) {
	if e, ok := l.fails[key]; ok {
		f := e.Value.(*failure)
		f.count++
		f.last = now
		l.order.MoveToBack(e)
		return
	}
	l.fails[key] = l.order.PushBack(&failure{key: key, count: 1, last: now})
	for l.order.Len() > l.cap { // bounded: at most one over
		l.forget(l.order.Front().Value.(*failure).key)
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

// userKey is the account a failure is counted under, bounded in length.
func userKey(user string) string {
	if len(user) > maxUserKey {
		user = user[:maxUserKey]
	}
	return "user:" + user
}
