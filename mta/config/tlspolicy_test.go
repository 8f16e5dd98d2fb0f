package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/session/selfsigned"
)

const tlsPolicyBase = "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n"

// writeCA writes a self-signed certificate as a PEM CA file.
func writeCA(t *testing.T) string {
	t.Helper()
	c, err := selfsigned.New([]string{"mx.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := selfsigned.PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLSPolicyForms: the short form and the table form are read, domains
// folded, the CA file's certificates loaded; no entry means none.
func TestTLSPolicyForms(t *testing.T) {
	t.Parallel()
	ca := writeCA(t)
	file := tlsPolicyBase + "[gomta.tls_policy]\n\"Example.ORG.\" = \"require\"\n\"*\" = \"opportunistic\"\n" +
		"[gomta.tls_policy.\"v.test\"]\npolicy = \"verify\"\nca_file = \"" + ca + "\"\n" +
		"[gomta.tls_policy.\"sys.test\"]\npolicy = \"verify\"\n"
	cfg, err := Parse("tls.toml", []byte(file), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.TLSPolicy
	if len(got) != 4 || got["example.org"].Policy != TLSRequire || got["*"].Policy != TLSOpportunistic ||
		got["v.test"].Policy != TLSVerify || got["v.test"].CAFile != ca || got["v.test"].Roots() == nil ||
		got["sys.test"].Policy != TLSVerify || got["sys.test"].Roots() != nil {
		t.Fatalf("tls_policy = %v", got)
	}
	want := "*=opportunistic, example.org=require, sys.test=verify, v.test=verify ca_file=" + ca
	if s := got.String(); s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	cfg, err = Parse("none.toml", []byte(tlsPolicyBase), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TLSPolicy) != 0 {
		t.Errorf("default tls_policy = %v, want none", cfg.TLSPolicy)
	}
}

// TestTLSPolicyProblemsAllReported: an unknown policy, a ca_file that cannot
// be read or holds no certificate, a ca_file with a policy that does not
// verify and an unknown key are each reported, naming the key.
func TestTLSPolicyProblemsAllReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	file := tlsPolicyBase + "[gomta.tls_policy]\n\"a.test\" = \"mandatory\"\n" +
		"\"b.test\" = { policy = \"verify\", ca_file = \"" + missing + "\" }\n" +
		"\"c.test\" = { policy = \"verify\", ca_file = \"" + junk + "\" }\n" +
		"\"d.test\" = { policy = \"require\", ca_file = \"" + junk + "\" }\n" +
		"\"e.test\" = { policy = \"verify\", cafile = \"x\" }\n"
	_, err := Parse("bad.toml", []byte(file), "", nil)
	if err == nil {
		t.Fatal("bad tls_policy accepted")
	}
	for _, want := range []string{
		`bad.toml: [gomta.tls_policy] "a.test": policy "mandatory": want "opportunistic", "require" or "verify"`,
		`[gomta.tls_policy."b.test"] ca_file: open ` + missing,
		`[gomta.tls_policy."c.test"] ca_file: ` + junk + ` holds no PEM certificate`,
		`[gomta.tls_policy."d.test"] ca_file is only for policy "verify"`,
		`[gomta.tls_policy."e.test"] unknown key "cafile"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestTLSPolicyChangeIsReloadable: the relay reads the policy per attempt,
// so a reload applies a change.
func TestTLSPolicyChangeIsReloadable(t *testing.T) {
	t.Parallel()
	old, err := Parse("old.toml", []byte(tlsPolicyBase), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("new.toml", []byte(tlsPolicyBase+"[gomta.tls_policy]\n\"b.test\" = \"require\"\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := Diff(old, c)
	if len(changes) != 1 || changes[0].String() != "tls_policy: (none) -> b.test=require" {
		t.Fatalf("Diff = %v", changes)
	}
}

// TestTLSPolicyTwoSpellingsRefused: keys that fold to one domain (case, a
// trailing dot, a U-label and its A-label) are a config problem, not a
// silent choice of whichever sorts last, which could be the weaker policy.
func TestTLSPolicyTwoSpellingsRefused(t *testing.T) {
	file := tlsPolicyBase + "[gomta.tls_policy]\n\"Bank.example\" = \"verify\"\n\"bank.example.\" = \"opportunistic\"\n" +
		"\"例子.中国\" = \"require\"\n\"xn--fsqu00a.xn--fiqs8s\" = \"opportunistic\"\n"
	cfg, err := Parse("tls.toml", []byte(file), "", nil)
	if err == nil {
		t.Fatalf("no problem reported; policy in force: %v", cfg.TLSPolicy)
	}
	for _, want := range []string{`"Bank.example" and "bank.example." name the same domain bank.example`,
		`"xn--fsqu00a.xn--fiqs8s" and "例子.中国" name the same domain xn--fsqu00a.xn--fiqs8s`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
