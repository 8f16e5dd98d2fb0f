package address

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCheck checks that the Mailbox parser never panics, that what it
// accepts is an ASCII address within the RFC 5321 limits that splits into a
// local part and a domain, and that the canonical forms are stable.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"ann@b.test", "Ann@B.Test", `"a b"@c.test`, `"a\"@"@c.test`, "u@[192.0.2.1]",
		"u@[IPv6:2001:db8::1]", "u@[tag:x]", "Postmaster", "postmaster@a.test",
		"a..b@c", "@", "a@b@c.test", "a@[", "\xff@b.test", strings.Repeat("x", 70) + "@b.test",
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
