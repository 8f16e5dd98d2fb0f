package limit

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func tcp(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

type strAddr string

func (s strAddr) Network() string { return "test" }
func (s strAddr) String() string  { return string(s) }

func TestIPKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{tcp("127.0.0.1:25"), "ip:127.0.0.1"},
		{tcp("127.0.0.1:26"), "ip:127.0.0.1"},
		{tcp("[::ffff:10.0.0.1]:25"), "ip:10.0.0.1"},
		{tcp("[2001:db8:1:2:3:4:5:6]:110"), "ip:2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:2:ffff::1]:110"), "ip:2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:3::1]:110"), "ip:2001:db8:1:3::/64"},
		{strAddr("192.0.2.1:1234"), "ip:192.0.2.1"},
		{strAddr("pipe"), "ip:pipe"},
		{nil, "ip:"},
	} {
		if got := ipKey(tc.addr); got != tc.want {
			t.Errorf("ipKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{0, 5, 0},
		{time.Second, 0, 0},
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 3, 4 * time.Second},
		{time.Second, 4, MaxAuthDelay},
		{time.Second, 1 << 30, MaxAuthDelay},
		{time.Hour, 1, MaxAuthDelay},
		{100 * time.Millisecond, 3, 400 * time.Millisecond},
	} {
		if got := backoff(tc.base, tc.n); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.base, tc.n, got, tc.want)
		}
	}
}

func TestAccept(t *testing.T) {
	t.Parallel()
	l := New(Config{MaxConns: 3, MaxConnsPerIP: 2})
	a1, a2, a3 := tcp("127.0.0.1:1"), tcp("127.0.0.1:2"), tcp("127.0.0.2:1")
	r1, err := l.Accept(a1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Accept(a2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(a1); err != ErrTooManyFromIP {
		t.Fatalf("third from 127.0.0.1: %v, want ErrTooManyFromIP", err)
	}
	r3, err := l.Accept(a3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(tcp("127.0.0.3:1")); err != ErrTooManyConns {
		t.Fatalf("fourth in total: %v, want ErrTooManyConns", err)
	}
	r1()
	r1() // a second release does nothing
	if _, err := l.Accept(tcp("127.0.0.4:1")); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := l.Accept(tcp("127.0.0.5:1")); err != ErrTooManyConns {
		t.Fatalf("double release freed two slots: %v", err)
	}
	r2()
	r3()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total != 1 || len(l.perIP) != 1 {
		t.Fatalf("total %d, perIP %v; want 1 live connection", l.total, l.perIP)
	}
}

func TestExemptPerIP(t *testing.T) {
	t.Parallel()
	exempt := func(a net.Addr) bool { return a.(*net.TCPAddr).IP.Equal(net.IPv4(127, 0, 0, 1)) }
	l := New(Config{MaxConns: 4, MaxConnsPerIP: 1, ExemptPerIP: exempt})
	for i := range 3 {
		if _, err := l.Accept(tcp("127.0.0.1:1")); err != nil {
			t.Fatalf("exempt address, connection %d: %v", i+1, err)
		}
	}
	if _, err := l.Accept(tcp("127.0.0.2:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(tcp("127.0.0.2:2")); err != ErrTooManyConns {
		t.Fatalf("the total limit applies to everyone: %v", err)
	}
	l2 := New(Config{MaxConnsPerIP: 1, ExemptPerIP: exempt})
	l2.Accept(tcp("127.0.0.2:1"))
	if _, err := l2.Accept(tcp("127.0.0.2:2")); err != ErrTooManyFromIP {
		t.Fatalf("a non-exempt address is limited: %v", err)
	}
}

func TestUnlimitedAndNil(t *testing.T) {
	t.Parallel()
	l := New(Config{})
	for i := range 100 {
		if _, err := l.Accept(tcp("127.0.0.1:1")); err != nil {
			t.Fatal(err)
		}
		a, d, ok := l.BeginAuth(tcp("127.0.0.1:1"), "u")
		if !ok || d != 0 {
			t.Fatalf("failure %d: BeginAuth = %v, %v; want 0, true", i, d, ok)
		}
		a.Failed()
	}
	var nl *Limiter
	rel, err := nl.Accept(nil)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	a, d, ok := nl.BeginAuth(nil, "u")
	if !ok || d != 0 || a != nil {
		t.Fatalf("nil Limiter: %v %v %v", a, d, ok)
	}
	a.Failed()
	a.Succeeded()
	a.Cancel()
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(cfg Config) (*Limiter, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := New(cfg)
	l.now = c.now
	return l, c
}

// fail records one failed login of user from ip; it must be allowed.
func fail(t *testing.T, l *Limiter, ip, user string) {
	t.Helper()
	a, _, ok := l.BeginAuth(tcp(ip), user)
	if !ok {
		t.Fatalf("%s %s: locked out, want a failure recorded", ip, user)
	}
	a.Failed()
}

// allowed asks BeginAuth and gives the place back.
func allowed(l *Limiter, ip, user string) (time.Duration, bool) {
	a, d, ok := l.BeginAuth(tcp(ip), user)
	a.Cancel()
	return d, ok
}

func TestAuthLockout(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		ip      string
		user    string
		result  string // how the attempt is settled: "fail", "ok", or "" (cancelled)
		allowed bool   // BeginAuth's verdict, before settling
		delay   time.Duration
	}
	ip1, ip2, ip3, ip4 := "127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1", "127.0.0.4:1"
	for _, tc := range []struct {
		name    string
		account func(string) string
		steps   []step
	}{
		{"per IP, other accounts", nil, []step{
			{ip: ip1, user: "a", allowed: true},
			{ip: ip1, user: "a", result: "fail", allowed: true},
			{ip: ip1, user: "b", result: "fail", allowed: true, delay: time.Second},
			{ip: ip1, user: "c", result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip1, user: "d", allowed: false},
			{ip: ip2, user: "d", allowed: true},
		}},
		{"per account, other IPs", nil, []step{
			{ip: ip1, user: "a", result: "fail", allowed: true},
			{ip: ip2, user: "a", result: "fail", allowed: true, delay: time.Second},
			{ip: ip3, user: "a", result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip4, user: "b", allowed: true},
			{ip: ip4, user: "a", allowed: false},
		}},
		{"lock-out ends after the window", nil, []step{
			{ip: ip1, user: "a", result: "fail", allowed: true},
			{ip: ip1, user: "a", result: "fail", allowed: true, delay: time.Second},
			{ip: ip1, user: "a", result: "fail", allowed: true, delay: 2 * time.Second},
			{advance: 14 * time.Minute, ip: ip2, user: "a", allowed: false},
			{advance: time.Minute, ip: ip1, user: "a", allowed: true},
		}},
		{"success clears the account, not the IP", nil, []step{
			{ip: ip1, user: "a", result: "fail", allowed: true},
			{ip: ip1, user: "a", result: "fail", allowed: true, delay: time.Second},
			{ip: ip1, user: "a", result: "ok", allowed: true, delay: 2 * time.Second},
			{ip: ip2, user: "a", allowed: true},
			{ip: ip1, user: "b", result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip1, user: "b", allowed: false},
		}},
		{"unknown user counts the IP only", nil, []step{
			{ip: ip1, result: "fail", allowed: true},
			{ip: ip2, user: "", allowed: true},
			{ip: ip1, result: "fail", allowed: true, delay: time.Second},
			{ip: ip1, result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip1, allowed: false},
		}},
		{"an attempt not checked costs nothing", nil, []step{
			{ip: ip1, user: "a", result: "fail", allowed: true},
			{ip: ip1, user: "a", allowed: true, delay: time.Second},
			{ip: ip1, user: "a", allowed: true, delay: time.Second},
			{ip: ip1, user: "a", result: "fail", allowed: true, delay: time.Second},
			{ip: ip1, user: "a", result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip1, user: "a", allowed: false},
		}},
		{"the account's canonical name", strings.ToLower, []step{
			{ip: ip1, user: "a@X.test", result: "fail", allowed: true},
			{ip: ip2, user: "A@x.test", result: "fail", allowed: true, delay: time.Second},
			{ip: ip3, user: "a@x.TEST", result: "fail", allowed: true, delay: 2 * time.Second},
			{ip: ip4, user: "a@x.test", allowed: false},
			{ip: ip4, user: "b@x.test", allowed: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, c := newTest(Config{AuthFailures: 3, AuthDelay: time.Second, Account: tc.account})
			for i, s := range tc.steps {
				c.t = c.t.Add(s.advance)
				a, d, ok := l.BeginAuth(tcp(s.ip), s.user)
				if ok != s.allowed || d != s.delay {
					t.Fatalf("step %d (%+v): BeginAuth = %v, %v; want %v, %v", i, s, d, ok, s.delay, s.allowed)
				}
				switch s.result {
				case "fail":
					a.Failed()
				case "ok":
					a.Succeeded()
				default:
					a.Cancel()
				}
			}
		})
	}
}

// TestAuthPlaceTaken: an attempt counts from BeginAuth, so attempts in
// progress together never exceed AuthFailures; each settles once.
func TestAuthPlaceTaken(t *testing.T) {
	t.Parallel()
	l, _ := newTest(Config{AuthFailures: 3})
	ip := "127.0.0.1:1"
	var pending []*Attempt
	for i := range 3 {
		a, _, ok := l.BeginAuth(tcp(ip), "u"+strconv.Itoa(i))
		if !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
		pending = append(pending, a)
	}
	if _, ok := allowed(l, ip, "v"); ok {
		t.Fatal("a fourth attempt while three are being checked was allowed")
	}
	pending[0].Cancel()
	pending[0].Failed() // settled already: does nothing
	a, _, ok := l.BeginAuth(tcp(ip), "v")
	if !ok {
		t.Fatal("a cancelled attempt did not give its place back")
	}
	a.Failed()
	pending[1].Succeeded() // gives the address's place back
	if _, ok := allowed(l, ip, "w"); !ok {
		t.Fatal("a successful attempt did not give its place back")
	}
	pending[2].Failed()
	pending[2].Cancel() // settled already: does nothing
	fail(t, l, ip, "x") // the third failure: v, u2, x
	if _, ok := allowed(l, ip, "w"); ok {
		t.Fatal("three failures: want locked out")
	}
	// A place whose record expired meanwhile is not taken from a new one.
	l2, c := newTest(Config{AuthFailures: 2})
	old, _, _ := l2.BeginAuth(tcp(ip), "")
	c.t = c.t.Add(DefaultAuthWindow)
	fail(t, l2, ip, "")
	old.Cancel()
	fail(t, l2, ip, "")
	if _, ok := allowed(l2, ip, ""); ok {
		t.Fatal("cancelling an expired attempt took a place from a newer failure")
	}
}

func TestAuthRecordsBounded(t *testing.T) {
	t.Parallel()
	l, c := newTest(Config{AuthFailures: 2})
	l.cap = 100
	for i := range 1000 {
		c.t = c.t.Add(time.Millisecond)
		fail(t, l, fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), fmt.Sprintf("user%d", i))
	}
	l.mu.Lock()
	n, m := l.order.Len(), len(l.fails)
	l.mu.Unlock()
	if n != 100 || m != 100 {
		t.Fatalf("%d records in list, %d in map; want the cap, 100", n, m)
	}
	// The newest survive, the oldest were evicted.
	fail(t, l, "10.0.3.231:1", "") // i = 999 again
	if _, ok := allowed(l, "10.0.3.231:1", ""); ok {
		t.Error("newest address not locked after its second failure")
	}
	fail(t, l, "10.0.0.0:1", "")
	if _, ok := allowed(l, "10.0.0.0:1", ""); !ok {
		t.Error("oldest address still remembered past the cap")
	}
	// Everything expires after the window.
	c.t = c.t.Add(DefaultAuthWindow)
	allowed(l, "10.0.0.1:1", "")
	l.mu.Lock()
	n = l.order.Len()
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d records after the window, want 0", n)
	}
	// A very long account name is kept bounded.
	long := string(make([]byte, 1<<20))
	fail(t, l, "10.0.0.1:1", long)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.fails {
		if len(k) > maxUserKey+10 {
			t.Fatalf("key of %d octets kept", len(k))
		}
	}
}

// TestConcurrent runs many goroutines through every method; run with -race.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	l := New(Config{MaxConns: 50, MaxConnsPerIP: 5, AuthFailures: 3, AuthDelay: time.Millisecond})
	l.cap = 64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				a := tcp(fmt.Sprintf("10.0.%d.%d:1", g%8, i%16))
				rel, err := l.Accept(a)
				if err == nil {
					defer rel()
				}
				user := fmt.Sprintf("u%d", i%10)
				if at, _, ok := l.BeginAuth(a, user); ok {
					switch i % 7 {
					case 0:
						at.Succeeded()
					case 1:
						at.Cancel()
					default:
						at.Failed()
					}
				}
				if err == nil && i%2 == 0 {
					rel()
				}
			}
		}()
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total != 0 || len(l.perIP) != 0 {
		t.Fatalf("after all releases: total %d, perIP %v", l.total, l.perIP)
	}
	if l.order.Len() > 64 || len(l.fails) != l.order.Len() {
		t.Fatalf("records: list %d, map %d, cap 64", l.order.Len(), len(l.fails))
	}
}

// TestReconfigure: new limits apply to the next connection and login; the
// connections already open stay counted and none is cut.
func TestReconfigure(t *testing.T) {
	t.Parallel()
	l := New(Config{MaxConns: 1, Account: strings.ToLower})
	a := tcp("192.0.2.1:1000")
	rel1, err := l.Accept(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(a); err != ErrTooManyConns {
		t.Fatalf("second connection under MaxConns 1: %v", err)
	}
	l.Reconfigure(Config{MaxConns: 2, AuthFailures: 1})
	rel2, err := l.Accept(a)
	if err != nil {
		t.Fatalf("second connection under MaxConns 2: %v", err)
	}
	att, _, ok := l.BeginAuth(a, "U@x")
	if !ok {
		t.Fatal("first login refused")
	}
	att.Failed()
	if _, _, ok := l.BeginAuth(tcp("192.0.2.9:1"), "u@x"); ok {
		t.Error("login allowed after AuthFailures 1 was reached (Account kept from New: U@x counts as u@x)")
	}
	l.Reconfigure(Config{MaxConns: 1})
	if _, err := l.Accept(a); err != ErrTooManyConns {
		t.Fatalf("third connection under MaxConns 1 with two open: %v", err)
	}
	rel1()
	rel2()
	rel3, err := l.Accept(a)
	if err != nil {
		t.Fatalf("connection after both closed: %v", err)
	}
	rel3()
}

// TestAuthDelayFollowsFailuresOnly: logins still being checked count
// toward the lockout but not toward the delay. Counted in, ten concurrent
// POP3 logins from one address that all succeed waited up to 250 ms × 2⁹
// (capped at 5 s) each, and each wait kept the next logins in flight.
func TestAuthDelayFollowsFailuresOnly(t *testing.T) {
	t.Parallel()
	l, _ := newTest(Config{AuthFailures: 10, AuthDelay: 250 * time.Millisecond})
	ip := "127.0.0.1:1"
	var inFlight []*Attempt
	for i := range 5 {
		a, d, ok := l.BeginAuth(tcp(ip), "u"+strconv.Itoa(i))
		if !ok || d != 0 {
			t.Fatalf("concurrent attempt %d: delay %v, allowed %v; want no delay (nothing failed)", i+1, d, ok)
		}
		inFlight = append(inFlight, a)
	}
	inFlight[0].Failed()
	inFlight[1].Failed()
	if d, ok := allowed(l, ip, "v"); !ok || d != 500*time.Millisecond {
		t.Fatalf("after two failures (three still in flight): delay %v, allowed %v; want 500ms", d, ok)
	}
	for _, a := range inFlight[2:] {
		a.Succeeded()
	}
	if d, _ := allowed(l, ip, "w"); d != 500*time.Millisecond {
		t.Fatalf("the address's two failures stand after the successes: delay %v, want 500ms", d)
	}
}
