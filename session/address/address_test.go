package address

import (
	"errors"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, local, domain string
		ok                bool
	}{
		{"ann@b.test", "ann", "b.test", true},
		{"Ann@B.Test", "Ann", "B.Test", true},
		{`"a@b"@c.test`, `"a@b"`, "c.test", true}, // the domain follows the last '@'
		{"Postmaster", "Postmaster", "", false},
		{"x@", "x", "", true},
		{"", "", "", false},
	}
	for _, tt := range tests {
		l, d, ok := Split(tt.in)
		if l != tt.local || d != tt.domain || ok != tt.ok {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q, %v", tt.in, l, d, ok, tt.local, tt.domain, tt.ok)
		}
	}
}

func TestCanonicalForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, domain, canonical, account string
		postmaster                     bool
	}{
		{"ann@b.test", "b.test", "ann@b.test", "ann@b.test", false},
		{"Ann@B.TEST", "b.test", "Ann@b.test", "ann@b.test", false},
		{"Postmaster", "", "Postmaster", "postmaster", true},
		{"POSTMASTER@A.Test", "a.test", "POSTMASTER@a.test", "postmaster@a.test", true},
		{"postmaster.x@a.test", "a.test", "postmaster.x@a.test", "postmaster.x@a.test", false},
		{"u@[127.0.0.1]", "[127.0.0.1]", "u@[127.0.0.1]", "u@[127.0.0.1]", false},
		{"Us\xffr@A.test", "a.test", "Us\xffr@a.test", "Us\xffr@A.test", false}, // Account keeps bad octets as they are
	}
	for _, tt := range tests {
		if got := Domain(tt.in); got != tt.domain {
			t.Errorf("Domain(%q) = %q, want %q", tt.in, got, tt.domain)
		}
		if got := Canonical(tt.in); got != tt.canonical {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.canonical)
		}
		if got := Account(tt.in); got != tt.account {
			t.Errorf("Account(%q) = %q, want %q", tt.in, got, tt.account)
		}
		if got := IsPostmaster(tt.in); got != tt.postmaster {
			t.Errorf("IsPostmaster(%q) = %v, want %v", tt.in, got, tt.postmaster)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, err string // err "" = valid
	}{
		{"ann@b.test", ""},
		{"a.b+c@b-c.test", ""},
		{`"john doe"@b.test`, ""},
		{`"a\"b"@b.test`, ""},
		{"u@[192.0.2.1]", ""},
		{"u@[IPv6:2001:db8::1]", ""},
		{"u@[x-tag:abc]", ""},
		{"u@b", ""},
		{"ann", "missing @domain"},
		{"@b.test", "empty local part"},
		{strings.Repeat("a", 65) + "@b.test", "local part too long"},
		{"a..b@b.test", "empty atom in local part"},
		{"a b@b.test", "invalid character in local part"},
		{`"ab@b.test`, "unterminated quoted local part"},
		{`"a\` + "\x01" + `"@b.test`, "bad quoted pair in local part"},
		{"\"a\x01\"@b.test", "invalid character in quoted local part"},
		{"a@", "empty domain"},
		{"a@b..test", "empty label in domain"},
		{"a@" + strings.Repeat("a", 64) + ".test", "domain label too long"},
		{"a@" + strings.Repeat("abc.", 64) + "test", "domain too long"},
		{"a@-b.test", "domain label must start and end with a letter or digit"},
		{"a@b_c.test", "invalid character in domain"},
		{"a@[1.2.3]", "bad IPv4 address literal"},
		{"a@[IPv6:1.2.3.4]", "bad IPv6 address literal"},
		{"a@[x:<y>]", "bad address literal"},
		{"a@[]", "bad address literal"},
	}
	for _, tt := range tests {
		err := Check(tt.in)
		var se SyntaxError
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tt.in, err)
		case tt.err != "" && (!errors.As(err, &se) || string(se) != tt.err):
			t.Errorf("Check(%q) = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"b.test", "B-1.test", "x"} {
		if err := CheckDomain(d); err != nil {
			t.Errorf("CheckDomain(%q) = %v", d, err)
		}
	}
	for _, d := range []string{"", ".", "b.test.", "b..test", "-b.test", "b_c"} {
		if err := CheckDomain(d); err == nil {
			t.Errorf("CheckDomain(%q) = nil, want an error", d)
		}
	}
}
