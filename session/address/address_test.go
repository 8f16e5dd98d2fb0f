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

func TestCheckUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, err string // err "" = valid under SMTPUTF8
		ascii   bool   // Check accepts it too
	}{
		{"ann@b.test", "", true},
		{"用户@例子.中国", "", false},
		{"张三@mail.sustech.edu.cn", "", false},
		{"用户@xn--fsqu00a.xn--fiqs8s", "", false},
		{`"张 三"@b.test`, "", false},
		{"ann@bücher.example", "", false},
		{"a\xff@b.test", "invalid UTF-8 in address", false},
		{"a@例子..中国", "empty label in domain", false},
		{"a@-例子.中国", "invalid internationalized domain", false},
		{"a b@例子.中国", "invalid character in local part", false},
		{strings.Repeat("用", 22) + "@b.test", "local part too long", false}, // 66 octets
	}
	for _, tt := range tests {
		err := CheckUTF8(tt.in)
		var se SyntaxError
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("CheckUTF8(%q) = %v, want nil", tt.in, err)
		case tt.err != "" && (!errors.As(err, &se) || string(se) != tt.err):
			t.Errorf("CheckUTF8(%q) = %v, want %q", tt.in, err, tt.err)
		}
		if got := Check(tt.in) == nil; got != tt.ascii {
			t.Errorf("Check(%q) accepted = %v, want %v", tt.in, got, tt.ascii)
		}
	}
}

// TestIDNAEquivalence checks that a domain in U-labels and in A-labels is
// one domain, and that an account name is folded to one key whatever the
// case of its ASCII letters and whatever the normalisation of its local part.
func TestIDNAEquivalence(t *testing.T) {
	t.Parallel()
	if u, a := Domain("用户@例子.中国"), Domain("用户@XN--FSQU00A.xn--fiqs8s"); u != a || a != "xn--fsqu00a.xn--fiqs8s" {
		t.Errorf("Domain: U-label form %q, A-label form %q; want both xn--fsqu00a.xn--fiqs8s", u, a)
	}
	if got := FoldDomain("Bücher.Example"); got != "xn--bcher-kva.example" {
		t.Errorf("FoldDomain(Bücher.Example) = %q", got)
	}
	if u, a := Account("用户@例子.中国"), Account("用户@xn--fsqu00a.xn--fiqs8s"); u != a {
		t.Errorf("Account: %q and %q differ", u, a)
	}
	composed, decomposed := "jos\u00e9@b.test", "jos\u0065\u0301@B.test"
	if c, d := Account(composed), Account(decomposed); c != d || c != composed {
		t.Errorf("Account(NFC) = %q, Account(NFD) = %q; want both %q", c, d, composed)
	}
	if got := Account("ZhangSan张三@Mail.SUSTech.edu.cn"); got != "zhangsan张三@mail.sustech.edu.cn" {
		t.Errorf("Account folds ASCII letters: got %q", got)
	}
	if got := Canonical("用户@例子.中国"); got != "用户@xn--fsqu00a.xn--fiqs8s" {
		t.Errorf("Canonical = %q", got)
	}
}
