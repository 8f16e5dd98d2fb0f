package address

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheck checks that the Mailbox parser never panics, that what it
// accepts is an ASCII address within the RFC 5321 limits that splits into a
// local part and a domain, and that the canonical forms are stable.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"ann@b.test", "Ann@B.Test", `"a b"@c.test`, `"a\"@"@c.test`, "u@[192.0.2.1]",
		"u@[IPv6:2001:db8::1]", "u@[tag:x]", "Postmaster", "postmaster@a.test",
		"a..b@c", "@", "a@b@c.test", "a@[", "\xff@b.test", strings.Repeat("x", 70) + "@b.test",
		"用户@例子.中国", "用户@xn--fsqu00a.xn--fiqs8s", "Ünïcode@BÜCHER.example", "\"张 三\"@b.test",
		"a@xn--zz", "a@例子..中国", "u\u0308@b.test", "İ@b.test", "a@ＥＸＡＭＰＬＥ。com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Check(s)
		var se SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("Check(%q) = %v (%T), want a SyntaxError", s, err, err)
		}
		if c := Canonical(s); Canonical(c) != c || Domain(c) != Domain(s) {
			t.Fatalf("Canonical(%q) = %q is not stable", s, c)
		}
		if a := Account(s); Account(a) != a {
			t.Fatalf("Account(%q) = %q is not stable", s, a)
		}
		errU := CheckUTF8(s)
		if errU != nil && !errors.As(errU, &se) {
			t.Fatalf("CheckUTF8(%q) = %v (%T), want a SyntaxError", s, errU, errU)
		}
		if IsASCII(s) && (err == nil) != (errU == nil) {
			t.Fatalf("ASCII %q: Check = %v but CheckUTF8 = %v", s, err, errU)
		}
		if errU == nil {
			checkUTF8Accepted(t, s)
		}
		if err != nil {
			return
		}
		local, domain, ok := Split(s)
		if !ok || local == "" || domain == "" || len(local) > MaxLocalPart || len(domain) > MaxDomain {
			t.Fatalf("accepted %q: local %q domain %q", s, local, domain)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				t.Fatalf("accepted %q with a control or non-ASCII octet", s)
			}
		}
		if Check(Canonical(s)) != nil {
			t.Fatalf("accepted %q but not its canonical form %q", s, Canonical(s))
		}
	})
}

// checkUTF8Accepted checks what CheckUTF8 accepted: valid UTF-8 within the
// octet limits, whose folded domain is ASCII (its A-label form) and still
// accepted, and whose Account form is accepted too.
func checkUTF8Accepted(t *testing.T, s string) {
	local, domain, ok := Split(s)
	if !ok || local == "" || domain == "" || len(local) > MaxLocalPart || len(domain) > MaxDomain || !utf8.ValidString(s) {
		t.Fatalf("CheckUTF8 accepted %q: local %q domain %q", s, local, domain)
	}
	if d := Domain(s); !IsASCII(d) {
		t.Fatalf("CheckUTF8 accepted %q but its folded domain %q is not ASCII", s, d)
	}
	if err := CheckUTF8(local + "@" + Domain(s)); err != nil {
		t.Fatalf("CheckUTF8 accepted %q but not with its folded domain: %v", s, err)
	}
}
