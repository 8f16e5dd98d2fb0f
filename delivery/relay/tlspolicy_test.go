package relay

import (
	"context"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/mtatest"
	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

func TestTLSPolicyFor(t *testing.T) {
	t.Parallel()
	roots := x509.NewCertPool()
	p := NewTLSPolicy(map[string]DomainTLS{"Req.Test": {Mode: TLSRequire}, "v.test": {Mode: TLSVerify, Roots: roots}})
	withDefault := NewTLSPolicy(map[string]DomainTLS{"*": {Mode: TLSRequire}, "open.test": {}})
	for _, c := range []struct {
		p      *TLSPolicy
		domain string
		want   DomainTLS
	}{
		{p, "req.test", DomainTLS{Mode: TLSRequire}},
		{p, "REQ.test", DomainTLS{Mode: TLSRequire}},
		{p, "v.test", DomainTLS{Mode: TLSVerify, Roots: roots}},
		{p, "other.test", DomainTLS{}},
		{withDefault, "other.test", DomainTLS{Mode: TLSRequire}},
		{withDefault, "open.test", DomainTLS{}},
		{nil, "req.test", DomainTLS{}},
	} {
		if got := c.p.For(c.domain); got != c.want {
			t.Errorf("For(%q) = %+v, want %+v", c.domain, got, c.want)
		}
	}
}

// TestConnTLSMeets: a plain connection serves only opportunistic domains;
// an unverified TLS one also require domains; a verify domain takes only a
// connection verified for the same host name against the same roots.
func TestConnTLSMeets(t *testing.T) {
	t.Parallel()
	roots, other := x509.NewCertPool(), x509.NewCertPool()
	plain, tlsOnly := connTLS{}, connTLS{on: true}
	verified := connTLS{on: true, verified: true, host: "mx.test", roots: roots}
	opp, req, ver := DomainTLS{}, DomainTLS{Mode: TLSRequire}, DomainTLS{Mode: TLSVerify, Roots: roots}
	for _, c := range []struct {
		name string
		ct   connTLS
		pol  DomainTLS
		host string
		want bool
	}{
		{"plain/opportunistic", plain, opp, "mx.test", true},
		{"plain/require", plain, req, "mx.test", false},
		{"plain/verify", plain, ver, "mx.test", false},
		{"tls/require", tlsOnly, req, "mx.test", true},
		{"tls/verify", tlsOnly, ver, "mx.test", false},
		{"verified/verify", verified, ver, "mx.test", true},
		{"verified/verify other name", verified, ver, "mx2.test", false},
		{"verified/verify other roots", verified, DomainTLS{Mode: TLSVerify, Roots: other}, "mx.test", false},
		{"verified/require", verified, req, "mx.test", true},
	} {
		if got := c.ct.meets(c.pol, c.host); got != c.want {
			t.Errorf("%s: meets = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCachedPlainConnectionNotUsedForRequire: a.test (opportunistic) and
// b.test (require) share a mail exchanger without STARTTLS. a.test's
// messages reuse one plain connection; b.test's is not handed that
// connection (it is closed), and the new one fails with 4.7.5 for want of
// STARTTLS: the message is deferred, and the server never sees it.
func TestCachedPlainConnectionNotUsedForRequire(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	res := NewResolver(map[string]string{"a.test.": "mx.shared.test.", "b.test.": "mx.shared.test."},
		map[string]string{"mx.shared.test.": srv.Port()}, false)
	pool := NewPool(PoolOptions{MaxIdle: time.Hour})
	t.Cleanup(pool.Close)
	core, logs := observer.New(zapcore.InfoLevel)
	rl := New(res, Options{LocalName: "relay.test", Timeout: 30 * time.Second, Logger: zap.New(core), Pool: pool,
		TLSPolicy: NewTLSPolicy(map[string]DomainTLS{"b.test": {Mode: TLSRequire}})})
	var opens atomic.Int32
	for _, id := range []string{"m1", "m2"} {
		out := rl.Deliver(context.Background(), job(id, "a.test", opener(&opens), "ann@a.test"))
		if out.Errs[0] != nil || out.TLS {
			t.Fatalf("%s to a.test: %v (tls %v)", id, out.Errs[0], out.TLS)
		}
	}
	if srv.Conns() != 1 {
		t.Fatalf("a.test's two messages took %d connections, want one reused", srv.Conns())
	}
	out := rl.Deliver(context.Background(), job("m3", "b.test", opener(&opens), "bob@b.test"))
	var ce *ConnError
	if !errors.As(out.Errs[0], &ce) || ce.Enhanced != "4.7.5" || !reply.Temporary(out.Errs[0]) {
		t.Fatalf("b.test: %v, want a temporary 4.7.5", out.Errs[0])
	}
	want := "STARTTLS with mx.shared.test[" + srv.Addr()[:len("127.0.0.1")] + "]:" + srv.Port() +
		": TLS required by policy for b.test, but the server did not offer STARTTLS"
	if out.Errs[0].Error() != want {
		t.Errorf("b.test: %q, want %q", out.Errs[0], want)
	}
	if n := len(srv.Messages()); n != 2 || srv.Conns() != 2 {
		t.Fatalf("%d messages over %d connections, want a.test's 2 and b.test's own connection", n, srv.Conns())
	}
	mtatest.Eventually(t, "the cached plain connection closed with QUIT", func() bool { return count(srv.Lines(), "QUIT") == 1 })
	deferred := logs.FilterMessage("relay deferred").All()
	if len(deferred) != 1 {
		t.Fatalf("%d relay deferred lines", len(deferred))
	}
	f := deferred[0].ContextMap()
	if f["tls"] != false || f["enhanced"] != "4.7.5" || f["domain"] != "b.test" {
		t.Errorf("relay deferred fields %v", f)
	}
	for _, e := range logs.FilterMessage("relay delivered").All() {
		if e.ContextMap()["tls"] != false {
			t.Errorf("relay delivered fields %v", e.ContextMap())
		}
	}
}
