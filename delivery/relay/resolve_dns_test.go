package relay

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest/dnstest"
	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// zone is what the test DNS server holds for these tests.
var zone = dnstest.Zone{
	Records: []string{
		"order.test. IN MX 20 mx2.order.test.",
		"order.test. IN MX 10 mx1.order.test.",
		"mx1.order.test. IN A 127.0.0.2",
		"mx1.order.test. IN AAAA ::1",
		"mx2.order.test. IN A 127.0.0.3",
		"equal.test. IN MX 5 best.equal.test.",
		"equal.test. IN MX 10 a.equal.test.",
		"equal.test. IN MX 10 b.equal.test.",
		"best.equal.test. IN A 127.0.0.5",
		"a.equal.test. IN A 127.0.0.6",
		"b.equal.test. IN A 127.0.0.7",
		"implicit.test. IN A 127.0.0.4",
		"implicit.test. IN TXT \"v=spf1 -all\"",
		"null.test. IN MX 0 .",
		"null.test. IN A 127.0.0.8",
		"halfbad.test. IN MX 10 gone.halfbad.test.",
		"halfbad.test. IN MX 20 failing.halfbad.test.",
		"halfbad.test. IN MX 30 ok.halfbad.test.",
		"ok.halfbad.test. IN A 127.0.0.9",
		"allgone.test. IN MX 10 gone.allgone.test.",
		"sick.test. IN MX 10 failing.halfbad.test.",
		"tables.test. IN MX 10 mx.tables.test.",
	},
	ServFail: []string{"servfail.test", "failing.halfbad.test"},
	Silent:   []string{"silent.test"},
}

// dnsResolver is a Resolver that asks only the test's DNS server.
func dnsResolver(t *testing.T, port int) (*Resolver, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t, zone)
	return &Resolver{DNS: true, Net: DNSClient([]string{srv.Addr}), Port: port}, srv
}

func TestDNSLookup(t *testing.T) {
	t.Parallel()
	r, _ := dnsResolver(t, 2525)
	tests := []struct {
		domain string
		want   []Target
	}{
		// By preference, every address of each mail exchanger at the relay port.
		{"order.test", []Target{{"mx1.order.test", "127.0.0.2:2525"}, {"mx1.order.test", "[::1]:2525"}, {"mx2.order.test", "127.0.0.3:2525"}}},
		// No MX record: the domain itself (RFC 5321 §5.1).
		{"Implicit.TEST.", []Target{{"implicit.test", "127.0.0.4:2525"}}},
		// A mail exchanger that does not exist or whose DNS fails is skipped.
		{"halfbad.test", []Target{{"ok.halfbad.test", "127.0.0.9:2525"}}},
	}
	for _, tt := range tests {
		got, err := r.Lookup(context.Background(), tt.domain)
		if err != nil {
			t.Errorf("%s: %v", tt.domain, err)
			continue
		}
		// The order of one host's A and AAAA addresses is RFC 6724's,
		// which depends on the machine's routes: compare it as a set.
		sortAddrsPerHost(got)
		sortAddrsPerHost(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.domain, got, tt.want)
		}
	}
}

func sortAddrsPerHost(ts []Target) {
	slices.SortStableFunc(ts, func(a, b Target) int {
		if a.Host != b.Host {
			return 0
		}
		return cmpString(a.Addr, b.Addr)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDNSDefaultPortIs25(t *testing.T) {
	t.Parallel()
	r, _ := dnsResolver(t, 0)
	got, err := r.Lookup(context.Background(), "implicit.test")
	if err != nil || !slices.Equal(got, []Target{{"implicit.test", "127.0.0.4:25"}}) {
		t.Fatalf("got %v %v", got, err)
	}
}

// TestDNSEqualPreferencesShuffled: the best MX always comes first; the two
// of equal preference come in either order (RFC 5321 §5.1).
func TestDNSEqualPreferencesShuffled(t *testing.T) {
	t.Parallel()
	r, _ := dnsResolver(t, 25)
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		got, err := r.Lookup(context.Background(), "equal.test")
		if err != nil || len(got) != 3 {
			t.Fatalf("got %v %v", got, err)
		}
		if got[0].Host != "best.equal.test" {
			t.Fatalf("best MX not first: %v", got)
		}
		seen[got[1].Host+" "+got[2].Host] = true
	}
	if !seen["a.equal.test b.equal.test"] || !seen["b.equal.test a.equal.test"] {
		t.Fatalf("equal preferences always in one order: %v", seen)
	}
}

func TestDNSFailures(t *testing.T) {
	t.Parallel()
	r, srv := dnsResolver(t, 25)
	tests := []struct {
		domain    string
		temporary bool
		enhanced  string
	}{
		{"null.test", false, "5.1.10"},   // RFC 7505: accepts no mail
		{"nx.test", false, "5.1.2"},      // NXDOMAIN
		{"allgone.test", false, "5.1.2"}, // its only MX does not exist
		{"servfail.test", true, "4.4.3"}, // SERVFAIL: try again later
		{"sick.test", true, "4.4.3"},     // its only MX's name server fails
		{"", false, "5.1.2"},             // no domain at all
	}
	for _, tt := range tests {
		ts, err := r.Lookup(context.Background(), tt.domain)
		var re *ResolveError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v %v, want *ResolveError", tt.domain, ts, err)
			continue
		}
		if re.Temporary() != tt.temporary || reply.Temporary(err) != tt.temporary || re.Enhanced() != tt.enhanced {
			t.Errorf("%q: %v: temporary %v enhanced %s, want %v %s", tt.domain, err, re.Temporary(), re.Enhanced(), tt.temporary, tt.enhanced)
		}
	}
	// A null MX is final: the domain's address is not tried.
	if n := srv.Queries("null.test", "A"); n != 0 {
		t.Errorf("null.test: %d A queries after a null MX", n)
	}
}

// TestDNSTimeoutIsTemporary: a name server that never answers defers.
func TestDNSTimeoutIsTemporary(t *testing.T) {
	t.Parallel()
	r, srv := dnsResolver(t, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := r.Lookup(ctx, "silent.test")
	var re *ResolveError
	if !errors.As(err, &re) || !re.Temporary() || re.Enhanced() != "4.4.3" {
		t.Fatalf("got %v, want a temporary 4.4.3", err)
	}
	if srv.Queries("silent.test", "MX") == 0 {
		t.Fatal("the test's server was not asked")
	}
}

// TestDNSTablesWin: an [MX] or [P] entry is used without asking DNS.
func TestDNSTablesWin(t *testing.T) {
	t.Parallel()
	r, srv := dnsResolver(t, 25)
	r.MX = map[string]string{"tables.test": "mx.fdns.test"}
	r.P = map[string]string{"mx.fdns.test": "127.0.0.1:1025", "order.test": "127.0.0.1:1026"}
	for d, want := range map[string]Target{"tables.test": {"mx.fdns.test", "127.0.0.1:1025"}, "order.test": {"order.test", "127.0.0.1:1026"}} {
		got, err := r.Lookup(context.Background(), d)
		if err != nil || !slices.Equal(got, []Target{want}) {
			t.Errorf("%s: got %v %v, want %v", d, got, err, want)
		}
		if n := srv.Queries(d, "MX"); n != 0 {
			t.Errorf("%s: %d MX queries, the tables should win", d, n)
		}
	}
	// An [MX] host without a [P] entry is found through DNS.
	r.MX["order.test"] = "mx2.order.test"
	got, err := r.Lookup(context.Background(), "order.test")
	if err != nil || !slices.Equal(got, []Target{{"mx2.order.test", "127.0.0.3:25"}}) {
		t.Errorf("order.test via [MX]: got %v %v", got, err)
	}
}

// TestDNSRelayFallsBackToTheNextMX: the best MX refuses the connection
// (nothing listens at its address), the second takes the message.
func TestDNSRelayFallsBackToTheNextMX(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{})
	port, _ := strconv.Atoi(srv.Port())
	dns := dnstest.Start(t, dnstest.Zone{Records: []string{
		"b.test. IN MX 10 mx1.b.test.",
		"b.test. IN MX 20 mx2.b.test.",
		"mx1.b.test. IN A 127.0.0.2", // refuses: the server listens on 127.0.0.1 only
		"mx2.b.test. IN A 127.0.0.1",
	}})
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", srv.Port())); err == nil {
		ln.Close() // 127.0.0.2 is on loopback here; nothing listens at that port now
	} else {
		t.Skipf("127.0.0.2 not usable: %v", err)
	}
	rl, logs := newRelay(t, &Resolver{DNS: true, Net: DNSClient([]string{dns.Addr}), Port: port})
	var opens atomic.Int32
	out := rl.Deliver(context.Background(), job("m-dns", "b.test", opener(&opens), "ann@b.test"))
	if out.Errs[0] != nil || out.MX != "mx2.b.test" || out.MXAddr != srv.Addr() {
		t.Fatalf("outcome %+v", out)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Rcpts[0] != "ann@b.test" {
		t.Fatalf("messages %+v", msgs)
	}
	if n := logs.FilterMessage("relay attempt").Len(); n != 2 {
		t.Fatalf("%d attempts logged, want 2 (mx1 refused, mx2)", n)
	}
}

// TestDNSNullMXBounces: a recipient at a null-MX domain fails at once,
// permanently, with 5.1.10 in its bounce.
func TestDNSNullMXBounces(t *testing.T) {
	t.Parallel()
	r, _ := dnsResolver(t, 25)
	rl, _ := newRelay(t, r)
	var opens atomic.Int32
	out := rl.Deliver(context.Background(), job("m-null", "null.test", opener(&opens), "x@null.test"))
	if err := out.Errs[0]; err == nil || reply.Temporary(err) {
		t.Fatalf("got %v, want a permanent failure", err)
	}
	if f := Failure("x@null.test", out.MX, out.Errs[0]); f.Enhanced != "5.1.10" || f.Text != "domain null.test accepts no mail (null MX)" {
		t.Fatalf("failure %+v", f)
	}
	if opens.Load() != 0 || out.MXAddr != "" {
		t.Fatalf("a connection was attempted: %+v", out)
	}
}
