package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"

	"gomta/mta/config"
	"gomta/session/reply"
)

// fdns is the course's fake DNS file format (keys and values with trailing dots).
const fdns = `
[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."
"Far.Example." = "MX.Far.Example."
"nowhere.test." = "ghost.test."

[P]
"smtp.exmail.qq.com." = "1025"
"mxbiz1.qq.com." = "1025"
"gmail-smtp-in.l.google.com." = "2025"
"mx.far.example." = "192.0.2.7:2526"
"self.test." = "3025"
`

func testResolver(t *testing.T) *Resolver {
	t.Helper()
	var f struct{ MX, P map[string]string }
	if _, err := toml.Decode(fdns, &f); err != nil {
		t.Fatal(err)
	}
	return NewResolver(f.MX, f.P, false)
}

// NewResolver builds a Resolver from tables written as in fdns.toml (keys
// and values may carry a trailing dot and any case, P values are "port" or
// "host:port"), parsed as the config parses them; a bad P value panics.
func NewResolver(mx, p map[string]string, dns bool) *Resolver {
	r := &Resolver{MX: make(map[string]string, len(mx)), P: make(map[string]string, len(p)), DNS: dns}
	for k, v := range mx {
		r.MX[normName(k)] = normName(v)
	}
	for k, v := range p {
		addr, err := config.ParseAddr(v)
		if err != nil {
			panic(fmt.Sprintf("[P] %q = %q: %v", k, v, err))
		}
		r.P[normName(k)] = addr
	}
	return r
}

func TestLookup(t *testing.T) {
	t.Parallel()
	r := testResolver(t)
	tests := []struct {
		domain string
		want   []Target
	}{
		{"gmail.com", []Target{{"gmail-smtp-in.l.google.com", "127.0.0.1:2025"}}},
		{"GMail.COM.", []Target{{"gmail-smtp-in.l.google.com", "127.0.0.1:2025"}}},
		{"mail.sustech.edu.cn", []Target{{"mxbiz1.qq.com", "127.0.0.1:1025"}}},
		{"far.example", []Target{{"mx.far.example", "192.0.2.7:2526"}}},
		{"self.test.", []Target{{"self.test", "127.0.0.1:3025"}}},                  // implicit MX, RFC 5321 §5.1
		{"smtp.exmail.qq.com", []Target{{"smtp.exmail.qq.com", "127.0.0.1:1025"}}}, // a host is its own MX
	}
	for _, tt := range tests {
		got, err := r.Lookup(context.Background(), tt.domain)
		if err != nil {
			t.Errorf("%s: %v", tt.domain, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.domain, got, tt.want)
		}
	}
}

func TestLookupNotFound(t *testing.T) {
	t.Parallel()
	r := testResolver(t)
	for _, d := range []string{"unknown.test", "nowhere.test", "", "."} {
		ts, err := r.Lookup(context.Background(), d)
		var re *ResolveError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v %v, want *ResolveError", d, ts, err)
			continue
		}
		if !re.NotFound || re.Temporary() || reply.Temporary(err) || re.Enhanced() != "5.1.2" {
			t.Errorf("%q: %v should be a permanent not-found (5.1.2)", d, err)
		}
	}
}

// TestLookupLiteralTables uses a Resolver built by hand, as the brief's
// struct literal allows (already normalised tables).
func TestLookupLiteralTables(t *testing.T) {
	t.Parallel()
	r := &Resolver{MX: map[string]string{"b.test": "mx.b.test"}, P: map[string]string{"mx.b.test": "127.0.0.2:25"}}
	got, err := r.Lookup(context.Background(), "B.test.")
	if err != nil || !slices.Equal(got, []Target{{"mx.b.test", "127.0.0.2:25"}}) {
		t.Fatalf("got %v %v", got, err)
	}
}
